"""Benchmark: 1,000 requests of the Llama-2-7B shape served on SPEQ and every baseline (target: < 30 s warm).

    PYTHONPATH=. python benchmarks/bench_serving.py [--rate 0.1] [--requests 1000] [--max-batch B] [--gamma auto]

Poisson arrivals with the Azure-fitted lengths (specsim/results/serving_requests.py), the config's
default policy (max batch: the most every accelerator's DRAM holds; token budget 2048). The engine's JIT
is warmed first (one pass), so the time is the serving simulation and its engine calls.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from specsim.results.config import load_run_config
from specsim.results.serving import Policy
from specsim.results.serving_requests import poisson_requests
from specsim.results.serving_run import prepare_all, serve_all, shape_workload, summarize

CONFIG = Path(__file__).resolve().parents[1] / "hwconfigs" / "sweep_llama2_7b.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--max-batch", type=int, default=0)
    ap.add_argument("--gamma", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    gamma = None if args.gamma is None else (0 if args.gamma == "auto" else int(args.gamma))
    cfg = load_run_config(str(CONFIG), args.overrides)
    requests = poisson_requests(args.rate, args.requests, seed=0)
    longest = max(r.prompt_tokens + r.output_tokens for r in requests)
    prompt = max(r.prompt_tokens for r in requests)
    warm, _ = prepare_all(cfg, shape_workload(cfg, None), Policy(1, 2048), longest, prompt)
    warm[0].costs.step(0, 1, 1, 64, 1)  # JIT warm-up (not timed)
    t0 = time.perf_counter()
    served, policy = prepare_all(
        cfg, shape_workload(cfg, None), Policy(args.max_batch, 2048, gamma=gamma), longest, prompt
    )
    runs = serve_all(served, requests, policy, seed=0)
    wall = time.perf_counter() - t0
    hits = sum(s.costs.hits for s in served)
    calls = hits + sum(s.costs.misses for s in served)
    print(f"{len(requests)} requests at {args.rate:g}/s, max batch {policy.max_batch}, {len(served)} accelerators")
    for run in runs:
        s = summarize(run, args.rate)
        print(
            f"  {s.accelerator:13s} gamma {s.gamma:>4s}  finished {s.finished}  TPOT p90 {s.tpot_p90_s * 1e3:7.1f} ms  "
            f"TTFT p90 {s.ttft_p90_s:7.2f} s  {s.tokens_per_s:6.1f} tok/s  busy {s.busy_share:.2f}  "
            f"iterations {s.iterations}"
        )
    print(
        f"wall time {wall:.2f} s; pass-cost cache: {calls:,} lookups, hit rate {hits / calls:.4f}, {calls - hits} engine calls"
    )


if __name__ == "__main__":
    main()
