"""Where does ``--gamma auto`` beat every fixed draft length? A max-batch x alpha grid on SPEQ serving Llama-2-7B.

    PYTHONPATH=. python benchmarks/gamma_auto_table.py [--requests 200] [--rate 10] [--capacity-gib 96]

For each acceptance rate alpha (i.i.d., workloads.0.shape.acceptance.speq) and max batch, the main
accelerator serves the same requests (Poisson arrivals at --rate, saturating by default, Azure-fitted
lengths) with gamma fixed at 1..8 and with gamma auto; prints one markdown row per grid point: the
best fixed gamma (by --metric), its throughput (output tokens/s over the span) and p90 TPOT, auto's,
the throughput ratio, and whether auto is at least as good as every fixed gamma by the metric. --capacity-gib raises the DRAM capacity (only; the
bandwidth stays) so large batches fit the KV check.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from specsim.results.config import load_run_config
from specsim.results.serving import Policy, serve
from specsim.results.serving_requests import poisson_requests
from specsim.results.serving_run import prepare_all, shape_workload, summarize

CONFIG = Path(__file__).resolve().parents[1] / "hwconfigs" / "sweep_llama2_7b.yaml"


def point(alpha: float, batch: int, requests, rate: float, capacity: float):
    overrides = [f"workloads.0.shape.acceptance.speq={alpha}", f"hardware.dram.capacity_gib={capacity:g}"]
    cfg = load_run_config(str(CONFIG), overrides)
    longest = max(r.prompt_tokens + r.output_tokens for r in requests)
    served, policy = prepare_all(
        cfg, shape_workload(cfg, None), Policy(batch, 2048), longest, max(r.prompt_tokens for r in requests)
    )
    main = served[0]
    out = {}
    for g in range(0, 9):  # 0: auto
        s = dataclasses.replace(main, gamma=g)
        out[g] = summarize(serve(s.accelerator.name, s.costs, requests, policy, s.acceptance, g, 0), rate)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--capacity-gib", type=float, default=96.0)
    ap.add_argument("--alphas", default="0.5,0.7,0.8,0.9,0.95")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument(
        "--metric",
        choices=("throughput", "tpot"),
        default="throughput",
        help="what 'best' means: output tokens/s (saturated loads) or lowest p90 TPOT (loads the server keeps up with)",
    )
    args = ap.parse_args()
    better = (lambda s: s.tokens_per_s) if args.metric == "throughput" else (lambda s: -s.tpot_p90_s)
    requests = poisson_requests(args.rate, args.requests, seed=0)
    print(
        "| alpha | max batch | best fixed g | its tok/s | its TPOT p90 (ms) | auto tok/s | auto mean g | auto TPOT p90 (ms) | auto / best tok/s | auto at least every fixed (by metric) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for alpha in (float(a) for a in args.alphas.split(",")):
        for batch in (int(b) for b in args.batches.split(",")):
            res = point(alpha, batch, requests, args.rate, args.capacity_gib)
            best = max(range(1, 9), key=lambda g: better(res[g]))
            b, a = res[best], res[0]
            wins = all(better(a) >= better(res[g]) for g in range(1, 9))
            print(
                f"| {alpha:g} | {batch} | {best} | {b.tokens_per_s:.1f} | {b.tpot_p90_s * 1e3:.1f} | "
                f"{a.tokens_per_s:.1f} | {a.mean_gamma:.2f} | {a.tpot_p90_s * 1e3:.1f} | "
                f"{a.tokens_per_s / b.tokens_per_s:.4f} | {'yes' if wins else 'no'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
