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

Every figure carries its 95 % interval: trace alpha as a ratio estimator over the prompts (the sampling
unit; 5 prompts give Student's t with 4 degrees of freedom), teacher-forced figures by batch means over
blocks of 64 positions (neighbouring positions are not independent).

Prints a markdown table and writes the rows as JSON. Usage::

    python benchmarks/cross_model_table.py --models smollm2-135m,gemma3-270m --json results/cross_model.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SCHEMES = ("speq", "mxfp4", "speq:lut8_row_max", "int4_g128", "multilevel", "hierarchical", "speq:e3_row")
#: scheme -> file suffix of its shipped greedy trace (traces/make_default_traces.sh)
SHIPPED = {"speq": "speq_g4", "mxfp4": "mxfp4_g4", "multilevel": "multilevel_g4", "hierarchical": "hierarchical_g4"}
AGREEMENT_TOKENS = 1024


BLOCK = 64  #: positions per batch of the teacher-forced intervals (batch means: neighbouring positions correlate)
LEVEL = 0.95


def teacher_forced(target, draft, ids) -> tuple[np.ndarray, np.ndarray]:
    """Per position of ``ids [1, T]``: whether the argmaxes of ``draft`` and ``target`` agree (greedy), and
    sum_x min(p, q) (the probability that speculative sampling accepts the draft's token)."""
    import torch

    with torch.no_grad():
        p_logits = target(ids).logits[0]
        q_logits = draft(ids).logits[0]
        greedy = (p_logits.argmax(-1) == q_logits.argmax(-1)).double().numpy()
        sampled = []
        for start in range(0, p_logits.shape[0], 128):  # chunks: Gemma's 262,144-entry vocabulary
            p = torch.softmax(p_logits[start : start + 128].double(), -1)
            q = torch.softmax(q_logits[start : start + 128].double(), -1)
            sampled.append(torch.minimum(p, q).sum(-1).numpy())
    return greedy, np.concatenate(sampled)


def mean_interval(per_position: np.ndarray) -> tuple[float, float | None, float | None]:
    """Mean of ``per_position`` with its ``LEVEL`` interval by batch means: ``ceil(n / BLOCK)`` consecutive
    blocks of near-equal length (``np.array_split``; 729 positions: 12 blocks of 60-61), Student's t over
    the block means; no interval from a single block."""
    from specsim.results.stats import t_quantile

    mean = float(per_position.mean())
    blocks = np.array([b.mean() for b in np.array_split(per_position, -(-per_position.size // BLOCK))])
    if blocks.size < 2:
        return mean, None, None
    half = t_quantile(0.5 + LEVEL / 2, blocks.size - 1) * blocks.std(ddof=1) / np.sqrt(blocks.size)
    return mean, mean - half, mean + half


def alpha_interval(trace) -> tuple[float, float | None, float | None]:
    """Level-1 alpha (accepted / examined draft tokens) with its ``LEVEL`` interval: a ratio estimator over
    the prompts (the sampling unit; :func:`specsim.results.stats.ratio_of_ratios`, delta method on the log
    scale, its upper end capped at 1); no interval from one prompt."""
    from specsim.results.stats import ratio_of_ratios

    top = trace["round_level"] == 0
    prompt = trace["round_prompt"][top]
    acc = trace["round_accepted"][top].astype(np.int64)
    examined = np.minimum(acc + 1, trace["round_drafted"][top].astype(np.int64))
    n = int(prompt.max(initial=-1)) + 1
    per_acc, per_examined = np.bincount(prompt, acc, n), np.bincount(prompt, examined, n)
    est = ratio_of_ratios(per_acc, np.ones(n), per_examined, np.ones(n), LEVEL)
    return est.value, est.low, None if est.high is None else min(est.high, 1.0)  # a log-scale interval; alpha <= 1


def paired_differences(paired: dict, versus: str) -> list[dict]:
    """Teacher-forced greedy agreement and sampled acceptance of every scheme minus ``versus``'s on the same
    positions of the same model and against the same target, with ``LEVEL`` intervals (batch means of the
    per-position differences); printed as a table."""
    out = []
    for (model, scheme), (agree, accept, target) in paired.items():
        if scheme == versus or (model, versus) not in paired:
            continue
        ref_agree, ref_accept, ref_target = paired[model, versus]
        if target != ref_target:  # agreement with another target (hierarchical's W4A16) is no like-for-like pair
            continue
        greedy, sampled = mean_interval(agree - ref_agree), mean_interval(accept - ref_accept)
        out.append({"model": model, "draft": scheme, "versus": versus, "greedy": greedy, "sampled": sampled})
    if out:
        print(f"\n| model | draft | teacher-forced greedy minus `{versus}` | teacher-forced sampled minus `{versus}` |")
        print("|---|---|---|---|")
        for d in out:
            print(
                f"| {d['model']} | `{d['draft']}` | {shown(*d['greedy'], sign=True)} | {shown(*d['sampled'], sign=True)} |"
            )
    return out


def rounded(estimate: tuple) -> list[float | None]:
    return [None if x is None else round(x, 4) for x in estimate]


def shown(value: float, low: float | None, high: float | None, sign: bool = False) -> str:
    f = "+.3f" if sign else ".3f"
    return f"{value:{f}} [{low:{f}}, {high:{f}}]" if low is not None else f"{value:{f}}"


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
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--draft-lm-head", default="fp16")
    ap.add_argument(
        "--greedy-traces",
        default=None,
        metavar="DIR",
        help="take greedy alpha from DIR/<model>_<suffix>.npz where it exists (the shipped traces: "
        "speq_g4, mxfp4_g4, multilevel_g4, hierarchical_g4) instead of decoding again",
    )
    ap.add_argument(
        "--versus",
        default="mxfp4",
        help="scheme every other is compared with, paired on the same teacher-forced positions (if run)",
    )
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from specsim.trace.tracefile import Trace, read_trace
    from specsim.workload.capture import CaptureConfig, capture
    from specsim.workload.drafts import build_scheme
    from specsim.workload.models import load_model
    from specsim.workload.prompts import shipped_text

    rows = []
    print(f"Intervals: {LEVEL:.0%}; trace alpha over prompts, teacher-forced over blocks of {BLOCK} positions.")
    print(
        "| model | draft | lm_head | alpha greedy | alpha sampled | teacher-forced greedy | teacher-forced sampled "
        "| wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    paired = {}  #: (model, scheme) -> per-position (agreement, acceptance)
    for model in args.models.split(","):
        loaded = load_model(model)
        ids = loaded.tokenizer(shipped_text("calibration"), return_tensors="pt").input_ids[:, :AGREEMENT_TOKENS]
        for scheme in args.schemes.split(","):
            start = time.perf_counter()
            built = build_scheme(loaded.model, scheme, draft_lm_head=args.draft_lm_head)
            agree, accept = teacher_forced(built.target, built.drafts[0], ids)
            tf = {"greedy": mean_interval(agree), "sample": mean_interval(accept)}
            paired[model, scheme] = (agree, accept, built.level_formats[0])
            expected = {
                "model": model,
                "verify": "greedy",
                "level_formats": built.level_formats,
                "lm_head_formats": built.lm_head_formats,
                "gamma": [args.gamma] * len(built.drafts),
                "prompts": "default",
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
                    alphas["greedy"], sources["greedy"], reused = alpha_interval(trace), str(shipped), True
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
                alphas[verify] = alpha_interval(Trace("<memory>", header, arrays))
                sources[verify] = f"{args.limit} prompts x {args.max_new_tokens} tokens, gamma {args.gamma}"
            row = {
                "model": model,
                "draft": scheme,
                "draft_lm_head": args.draft_lm_head,
                "gamma": args.gamma,
                "prompts": args.limit,
                "max_new_tokens": args.max_new_tokens,
                "level": LEVEL,
                "alpha_greedy": rounded(alphas["greedy"]),
                "alpha_sampled": rounded(alphas["sample"]),
                "teacher_forced_greedy": rounded(tf["greedy"]),
                "teacher_forced_sampled": rounded(tf["sample"]),
                "teacher_forced_positions": int(agree.size),
                "seconds": round(time.perf_counter() - start, 1),
                "alpha_sources": sources,
            }
            rows.append(row)
            if args.json:  # after every row: a long run stopped early keeps what it measured
                write_json(args.json, rows, [])
            print(
                f"| {model} | `{scheme}` | {args.draft_lm_head} | {shown(*alphas['greedy'])}{'*' if reused else ''} | "
                f"{shown(*alphas['sample'])} | {shown(*tf['greedy'])} | {shown(*tf['sample'])} | {row['seconds']:.0f} |",
                flush=True,
            )
    differences = paired_differences(paired, args.versus)
    if args.json:
        write_json(args.json, rows, differences)


def write_json(path: str, rows: list[dict], differences: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"rows": rows, "differences": differences}, indent=2))


if __name__ == "__main__":
    main()
