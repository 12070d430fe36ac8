"""Greedy speculative output == the target's own greedy output, for every draft scheme x gamma, on all shipped prompts.

Runs real speculative decoding on SmolLM2-135M for each scheme and gamma and compares the tokens
with the target's plain greedy decoding (computed once per prompt and target; the hierarchical
scheme's target is its 4-bit model). Prints one line per scheme x gamma and exits 1 on any mismatch.

The whole grid (4 schemes x 8 gammas x 40 prompts) takes hours on a 2-core machine, so each finished
cell is appended to ``--results`` (JSON lines) and a re-run with the same settings skips the cells
already there; ``--schemes`` and ``--gammas`` split the grid over processes, each with ``--threads 1``::

    python benchmarks/bench_greedy_equivalence.py --schemes speq,mxfp4 --threads 1 &
    python benchmarks/bench_greedy_equivalence.py --schemes multilevel,hierarchical --threads 1

Without ``--threads 1`` two such processes on 2 cores each keep an OpenMP thread spinning at its
barrier (torch's libgomp, also used by the Numba format kernels) and slow each other by 5-10x.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--schemes", default="speq,mxfp4,multilevel,hierarchical")
    ap.add_argument("--gammas", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--limit", type=int, default=None, help="first N prompts only (default: all)")
    ap.add_argument(
        "--results",
        default="results/greedy_equivalence.jsonl",
        help="finished cells (JSON lines); cells already there are skipped",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch/OpenMP/Numba threads of this process, with passive OpenMP waiting (set before "
        "torch loads); 1 when several processes share the cores",
    )
    args = ap.parse_args()
    if args.threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(args.threads)
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

    from specsim.workload.drafts import build_scheme
    from specsim.workload.models import load_model
    from specsim.workload.prompts import encode_prompt, load_prompts
    from specsim.workload.speculative import autoregressive_generate, speculative_generate

    results = Path(args.results)
    done = {}
    if results.exists():
        for line in results.read_text().splitlines():
            row = json.loads(line)
            done[(row["model"], row["scheme"], row["gamma"], row["max_new_tokens"], row["prompts"])] = row
    loaded = load_model(args.model)
    tok = loaded.tokenizer
    prompts = [encode_prompt(tok, p.text) for p in load_prompts("default")[: args.limit]]
    references: dict[str, list[list[int]]] = {}
    failures = 0
    for scheme in args.schemes.split(","):
        built = None
        for gamma in map(int, args.gammas.split(",")):
            key = (args.model, scheme, gamma, args.max_new_tokens, len(prompts))
            if key in done:
                row = done[key]
            else:
                built = built or build_scheme(loaded.model, scheme)
                if built.plan.target not in references:
                    references[built.plan.target] = [
                        autoregressive_generate(built.target, ids, args.max_new_tokens, eos_token_id=tok.eos_token_id)
                        for ids in prompts
                    ]
                reference = references[built.plan.target]
                t0 = time.perf_counter()
                bad = [
                    i
                    for i, ids in enumerate(prompts)
                    if speculative_generate(
                        built.target, built.drafts, ids, gamma, args.max_new_tokens, eos_token_id=tok.eos_token_id
                    ).tokens
                    != reference[i]
                ]
                row = {
                    "model": args.model,
                    "scheme": scheme,
                    "gamma": gamma,
                    "max_new_tokens": args.max_new_tokens,
                    "prompts": len(prompts),
                    "identical": len(prompts) - len(bad),
                    "mismatched_prompts": bad,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                results.parent.mkdir(parents=True, exist_ok=True)
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            failures += len(row["mismatched_prompts"])
            print(
                f"{scheme:>13} gamma={gamma}: {row['identical']}/{row['prompts']} prompts identical "
                f"({row['max_new_tokens']} tokens each, {row['seconds']:.0f} s)"
                + (f" MISMATCH on prompts {row['mismatched_prompts']}" if row["mismatched_prompts"] else ""),
                flush=True,
            )
    print("all identical" if not failures else f"{failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
