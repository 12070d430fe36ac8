"""Acceptance of every draft scheme x gamma, greedy and sampled, on a real model (the table in docs/measurements.md).

Runs real speculative decoding (the same code as ``specsim trace``, operand hooks off) and prints a
markdown table of mean accepted draft tokens per round, mean tokens per target verify step and the
alpha estimate; also writes the rows as JSON. Usage::

    python benchmarks/acceptance_table.py --limit 10 --max-new-tokens 48 --json results/acceptance.json

Prompts are the first ``--limit`` of the shipped set (which interleaves the five categories).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SCHEMES = ("speq", "mxfp4", "multilevel", "hierarchical")
GAMMAS = (2, 4, 8)
MODES = (("greedy", 1.0, 1.0), ("sample", 1.0, 1.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--schemes", default=",".join(SCHEMES))
    ap.add_argument("--gammas", default=",".join(map(str, GAMMAS)))
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()

    from specsim.trace.tracefile import Trace, summarize
    from specsim.workload.capture import CaptureConfig, capture

    rows = []
    print(
        "| scheme | gamma | verify | mean accepted / round | tokens / verify step | alpha | alpha per level | "
        "tokens | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scheme in args.schemes.split(","):
        for gamma in map(int, args.gammas.split(",")):
            for verify, temperature, top_p in MODES:
                cfg = CaptureConfig(
                    model=args.model,
                    draft=scheme,
                    gamma=gamma,
                    limit=args.limit,
                    max_new_tokens=args.max_new_tokens,
                    verify=verify,
                    temperature=temperature,
                    top_p=top_p,
                    operands=False,
                    layer_stats=False,
                )
                t0 = time.perf_counter()
                header, arrays = capture(cfg, progress=False)
                wall = time.perf_counter() - t0
                s = summarize(Trace("-", header, arrays))
                row = {
                    "scheme": scheme,
                    "gamma": gamma,
                    "verify": verify,
                    "temperature": temperature,
                    "mean_accepted": s.mean_accepted_per_round,
                    "tokens_per_round": s.mean_tokens_per_round,
                    "alpha": s.alpha,
                    "level_alpha": s.level_alpha,
                    "tokens": s.tokens_generated,
                    "rounds": s.rounds,
                    "wall_s": wall,
                    "levels": header["levels"],
                }
                rows.append(row)
                print(
                    f"| {scheme} | {gamma} | {verify} | {s.mean_accepted_per_round:.2f} | "
                    f"{s.mean_tokens_per_round:.2f} | {s.alpha:.3f} | "
                    f"{' / '.join(f'{a:.2f}' for a in s.level_alpha)} | {s.tokens_generated} | {wall:.0f} |",
                    flush=True,
                )
                if args.json:
                    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                    Path(args.json).write_text(
                        json.dumps(
                            {
                                "model": args.model,
                                "limit": args.limit,
                                "max_new_tokens": args.max_new_tokens,
                                "rows": rows,
                            },
                            indent=1,
                        )
                    )


if __name__ == "__main__":
    main()
