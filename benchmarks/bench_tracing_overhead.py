"""Wall time of speculative decoding with operand tracing (forward hooks) vs without, same work.

    python benchmarks/bench_tracing_overhead.py --limit 4 --max-new-tokens 48

Runs the same prompts (speq draft, gamma 4, greedy) alternately with and without an
:class:`~specsim.workload.optrace.OpRecorder` attached, ``--repeats`` times each, and reports the
best wall time of each and their ratio (target: tracing <= 1.5x).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--draft", default="speq")
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch

    from specsim.workload.drafts import build_scheme
    from specsim.workload.models import load_model
    from specsim.workload.optrace import OpRecorder
    from specsim.workload.prompts import encode_prompt, load_prompts
    from specsim.workload.speculative import speculative_generate

    loaded = load_model(args.model)
    built = build_scheme(loaded.model, args.draft)
    prompts = [encode_prompt(loaded.tokenizer, p.text) for p in load_prompts("default")[: args.limit]]

    def run(traced: bool) -> tuple[float, int]:
        recorder = OpRecorder([built.target, *built.drafts], built.level_formats) if traced else None
        t0 = time.perf_counter()
        for i, ids in enumerate(prompts):
            if recorder:
                recorder.prompt = i
            speculative_generate(built.target, built.drafts, ids, args.gamma, args.max_new_tokens, observer=recorder)
        wall = time.perf_counter() - t0
        steps = len(recorder.steps) if recorder else 0
        if recorder:
            recorder.remove()
        return wall, steps

    plain, traced, steps = [], [], 0
    for _ in range(args.repeats):
        plain.append(run(False)[0])
        wall, steps = run(True)
        traced.append(wall)
    print(
        f"machine: {torch.get_num_threads()} torch threads; {len(prompts)} prompts x {args.max_new_tokens} tokens, "
        f"{args.draft} gamma {args.gamma}, {steps} forward passes traced"
    )
    print(f"plain speculative decoding: {min(plain):.2f} s (runs {', '.join(f'{t:.2f}' for t in plain)})")
    print(f"with operand tracing:       {min(traced):.2f} s (runs {', '.join(f'{t:.2f}' for t in traced)})")
    print(f"overhead: {min(traced) / min(plain):.3f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
