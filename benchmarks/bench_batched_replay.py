"""Wall time of a batched decoding replay: 64 sequences x 256 new tokens decoded together (target < 10 s).

The workload is a SHAPE-DERIVED Llama-2-7B (architecture file, prompt 128 tokens, 256 new tokens, 64
sequences, acceptance sampled at alpha 0.8, gamma 4) replayed on SPEQ at ``decoding.batch`` 64 and on
its FP16 baseline at the same batch. The engine is warmed first (one small replay), so the figure is
the replay itself: schedule, operator table, event simulation and the report's per-sequence totals::

    PYTHONPATH=. python benchmarks/bench_batched_replay.py [--batch 64] [--tokens 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _config(folder: Path, batch: int, tokens: int, sequences: int) -> Path:
    path = folder / "batched.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "speq",
                # 64 sequences of 384 tokens hold 22 GiB of KV cache beside 12.3 GiB of weights: more than
                # the 4 x 8 GiB HBM2 stacks hold, so capacity is raised (bandwidth stays 1024 GB/s)
                "hardware": {"include": "speq", "dram": {"capacity_gib": 64}},
                "decoding": {
                    "method": "speq",
                    "draft": "speq",
                    "gamma": 4,
                    "batch": batch,
                    "level_modes": ["fp16", "quarter"],
                    "formats": ["fp16", "bsfp_draft"],
                },
                "baselines": {"fp16": str(ROOT / "hwconfigs" / "fp16.yaml")},
                "workloads": [
                    {
                        "name": "llama-2-7b",
                        "shape": {
                            "architecture": "llama-2-7b",
                            "prompts": sequences,
                            "prompt_len": 128,
                            "max_new_tokens": tokens,
                            "acceptance": {"speq": 0.8},
                        },
                    }
                ],
            }
        )
    )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from specsim.results.config import accelerators, load_run_config
    from specsim.results.decoding import replay, shape_trace_for

    with tempfile.TemporaryDirectory() as tmp:
        warm = load_run_config(_config(Path(tmp), 2, 8, 2))
        for acc in accelerators(warm):
            replay(acc, shape_trace_for(acc, warm.workloads[0].shape, warm.path, workload="w"), "w")
        cfg = load_run_config(_config(Path(tmp), args.batch, args.tokens, args.batch))
        for acc in accelerators(cfg):
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                trace = shape_trace_for(acc, cfg.workloads[0].shape, cfg.path, workload="w")
                r = replay(acc, trace, "w")
                times.append(time.perf_counter() - t)
            m = r.metrics
            print(
                f"{acc.name}: batch {args.batch} x {args.tokens} tokens, {sum(p.count for p in r.passes)} "
                f"batched passes, {r.tokens} tokens; replay {statistics.median(times):.2f} s (median of "
                f"{args.repeats}: {', '.join(f'{t:.2f}' for t in times)}); simulated {m['tokens_per_s']:.0f} "
                f"tokens/s, {m['decode_latency_per_token_s'] * 1e3:.2f} ms per token per sequence"
            )


if __name__ == "__main__":
    main()
