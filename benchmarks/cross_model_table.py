"""Acceptance of every draft on every embedded model: trace alpha beside teacher-forced agreement, greedy and sampled.

For each model and draft scheme this measures

* **trace alpha** (greedy and sampled at temperature 1): real speculative decoding over the first
  ``--limit`` shipped prompts x ``--max-new-tokens`` tokens (the code of ``specsim trace``, hooks off);
* **teacher-forced agreement** on the shipped calibration text (the first 1,024 tokens), between the
  level-1 draft and the model it drafts for (the FP16 target, or the W4 target of ``hierarchical``):
  greedy, the fraction of positions where both argmaxes agree; sampled, the mean over positions of
  sum_x min(p(x), q(x)) at temperature 1, the probability that speculative sampling accepts a draft token
  (Leviathan et al. 2023, eq. 1). Teacher forcing scores every draft on the same fixed text, so it is
  the fairer comparison between models whose greedy outputs repeat themselves differently.

Prints a markdown table and writes the rows as JSON. Usage::

    python benchmarks/cross_model_table.py --models smollm2-135m,gemma3-270m --json results/cross_model.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SCHEMES = ("speq", "speq:lut8_row_max", "mxfp4", "int4_g128", "multilevel", "hierarchical")
#: scheme -> file suffix of its shipped greedy trace (traces/make_default_traces.sh)
SHIPPED = {"speq": "speq_g4", "mxfp4": "mxfp4_g4", "multilevel": "multilevel_g4", "hierarchical": "hierarchical_g4"}
AGREEMENT_TOKENS = 1024


def teacher_forced(target, draft, ids) -> tuple[float, float]:
    """(greedy agreement, expected sampled acceptance) of ``draft`` against ``target`` on ``ids [1, T]``."""
    import torch

    with torch.no_grad():
        p_logits = target(ids).logits[0]
        q_logits = draft(ids).logits[0]
        greedy = float((p_logits.argmax(-1) == q_logits.argmax(-1)).float().mean())
        sampled = 0.0
        for start in range(0, p_logits.shape[0], 128):  # chunks: Gemma's 262,144-entry vocabulary
            p = torch.softmax(p_logits[start : start + 128].double(), -1)
            q = torch.softmax(q_logits[start : start + 128].double(), -1)
            sampled += float(torch.minimum(p, q).sum())
    return greedy, sampled / p_logits.shape[0]


def shipped_matches(header: dict, expected: dict) -> list[str]:
    """Names of the settings in which a shipped trace's ``header`` differs from ``expected``.

    A shipped greedy trace stands in for a fresh greedy run only if it decoded the same model with the
    same draft formats, lm_head formats, gamma, prompts and length; otherwise its alpha is not the
    alpha of this row.
    """
    from specsim.trace.tracefile import lm_head_formats

    recorded = {**header, "lm_head_formats": lm_head_formats(header)}
    return [key for key, value in expected.items() if recorded.get(key) != value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--schemes", default=",".join(SCHEMES))
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--draft-lm-head", default="fp16")
    ap.add_argument(
        "--greedy-traces",
        default=None,
        metavar="DIR",
        help="take greedy alpha from DIR/<model>_<suffix>.npz where it exists (the shipped traces: "
        "speq_g4, mxfp4_g4, multilevel_g4, hierarchical_g4) instead of decoding again",
    )
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from specsim.trace.tracefile import Trace, read_trace, summarize
    from specsim.workload.capture import CaptureConfig, capture
    from specsim.workload.drafts import build_scheme
    from specsim.workload.models import load_model
    from specsim.workload.prompts import shipped_text

    rows = []
    print(
        "| model | draft | lm_head | alpha greedy | alpha sampled | teacher-forced greedy | teacher-forced sampled "
        "| wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        loaded = load_model(model)
        ids = loaded.tokenizer(shipped_text("calibration"), return_tensors="pt").input_ids[:, :AGREEMENT_TOKENS]
        for scheme in args.schemes.split(","):
            start = time.perf_counter()
            built = build_scheme(loaded.model, scheme, draft_lm_head=args.draft_lm_head)
            tf_greedy, tf_sampled = teacher_forced(built.target, built.drafts[0], ids)
            expected = {
                "model": model,
                "verify": "greedy",
                "level_formats": built.level_formats,
                "lm_head_formats": built.lm_head_formats,
                "gamma": [args.gamma] * len(built.drafts),
                "prompt_count": args.limit,
                "max_new_tokens": args.max_new_tokens,
            }
            del built
            alphas, sources = {}, {}
            shipped = Path(args.greedy_traces or "/nonexistent") / f"{model}_{SHIPPED.get(scheme, '-')}.npz"
            reused = False
            if shipped.is_file():
                trace = read_trace(shipped)
                differs = shipped_matches(trace.header, expected)
                if differs:
                    print(f"# {shipped}: not reused, it differs in {', '.join(differs)}", flush=True)
                else:
                    alphas["greedy"], sources["greedy"], reused = summarize(trace).alpha, str(shipped), True
            for verify in ("greedy", "sample"):
                if verify in alphas:
                    continue
                cfg = CaptureConfig(
                    model=model,
                    draft=scheme,
                    gamma=args.gamma,
                    limit=args.limit,
                    max_new_tokens=args.max_new_tokens,
                    verify=verify,
                    seed=0,
                    operands=False,
                    layer_stats=False,
                    draft_lm_head=args.draft_lm_head,
                )
                header, arrays = capture(cfg, progress=False)
                alphas[verify] = summarize(Trace("<memory>", header, arrays)).alpha
                sources[verify] = f"{args.limit} prompts x {args.max_new_tokens} tokens, gamma {args.gamma}"
            row = {
                "model": model,
                "draft": scheme,
                "draft_lm_head": args.draft_lm_head,
                "gamma": args.gamma,
                "prompts": args.limit,
                "max_new_tokens": args.max_new_tokens,
                "alpha_greedy": round(alphas["greedy"], 4),
                "alpha_sampled": round(alphas["sample"], 4),
                "teacher_forced_greedy": round(tf_greedy, 4),
                "teacher_forced_sampled": round(tf_sampled, 4),
                "seconds": round(time.perf_counter() - start, 1),
                "alpha_sources": sources,
            }
            rows.append(row)
            print(
                f"| {model} | `{scheme}` | {args.draft_lm_head} | {row['alpha_greedy']:.3f}"
                f"{'*' if reused else ''} | "
                f"{row['alpha_sampled']:.3f} | {tf_greedy:.3f} | {tf_sampled:.3f} | {row['seconds']:.0f} |",
                flush=True,
            )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
