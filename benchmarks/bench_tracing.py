"""Where ``specsim trace`` spends its time, against plain FP16 greedy generation of the same prompts.

    PYTHONPATH=. python benchmarks/bench_tracing.py --draft speq --gamma 4 --limit 5 --max-new-tokens 64 --repeats 3 --cli --cold

Each repeat runs, back to back in this process (the order alternates between repeats):

* plain FP16 greedy generation: the model loaded as ``specsim trace`` loads it, then Hugging Face
  ``model.generate`` (greedy, same prompts, same token budget and end-of-sequence token);
* the same with the project's own FP16 autoregressive decoder
  (:func:`~specsim.workload.speculative.autoregressive_generate`, no hooks);
* ``capture()`` of the trace ``specsim trace`` would record, with its phase timings (model load,
  model fingerprint, draft construction, decoding with the operand recorder, layer statistics), then
  writing the trace file;
* the same speculative decoding without the operand recorder (the recorder's cost is the difference).

With ``--cli`` each repeat also times the two commands end to end as subprocesses::

    specsim trace --draft speq --gamma 4 --limit 5 --max-new-tokens 64 --verify greedy --seed 0 -o A.npz
    specsim trace --draft none --no-operands --no-layer-stats --limit 5 --max-new-tokens 64 ... -o B.npz

``--cold`` runs ``capture()`` once without the cache first (what a first run pays: layer statistics
and the draft's weight view computed). In-process model loads after the first are warm (about 0.3 s
instead of the 2-3 s a fresh process pays), so compare totals with the ``--cli`` lines. Timings on a
shared machine are noisy: the script prints the load average before and after, every run, and medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--draft", default="speq")
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cli", action="store_true", help="also time both commands end to end (subprocesses)")
    ap.add_argument("--cold", action="store_true", help="first time one capture without the cache")
    args = ap.parse_args()

    import torch
    import transformers

    from specsim.trace.tracefile import write_trace
    from specsim.workload.capture import CaptureConfig, capture
    from specsim.workload.drafts import build_scheme
    from specsim.workload.models import load_model
    from specsim.workload.prompts import encode_prompt, load_prompts
    from specsim.workload.speculative import SamplingConfig, autoregressive_generate, speculative_generate

    transformers.utils.logging.set_verbosity_error()
    cfg = CaptureConfig(
        model=args.model,
        draft=args.draft,
        gamma=args.gamma,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        verify="greedy",
        seed=0,
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench_tracing."))
    runs: dict[str, list[float]] = {}

    def note(name: str, seconds: float) -> None:
        runs.setdefault(name, []).append(seconds)

    def load():
        t0 = time.perf_counter()
        loaded = load_model(args.model)
        return loaded, time.perf_counter() - t0

    def fp16_generate() -> list[int]:
        loaded, t_load = load()
        model, tok = loaded.model, loaded.tokenizer
        prompts = [encode_prompt(tok, p.text) for p in load_prompts("default")[: args.limit]]
        t0 = time.perf_counter()
        out = []
        with torch.inference_mode():
            for ids in prompts:
                x = torch.tensor([ids])
                y = model.generate(
                    x,
                    attention_mask=torch.ones_like(x),
                    max_new_tokens=args.max_new_tokens,
                    do_sample=False,
                    eos_token_id=tok.eos_token_id,
                    pad_token_id=tok.eos_token_id,
                )
                out += y[0, len(ids) :].tolist()
        note("fp16 load", t_load)
        note("fp16 model.generate", time.perf_counter() - t0)
        t0 = time.perf_counter()
        for ids in prompts:
            autoregressive_generate(model, ids, args.max_new_tokens, eos_token_id=tok.eos_token_id)
        note("fp16 autoregressive_generate", time.perf_counter() - t0)
        return out

    def trace() -> list[int]:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        header, arrays = capture(cfg, progress=False, timings=timings)
        t1 = time.perf_counter()
        write_trace(tmp / "t.npz", header, arrays)
        note("trace write", time.perf_counter() - t1)
        note("trace total (capture + write)", time.perf_counter() - t0)
        for k, v in timings.items():
            note(f"trace {k}", v)
        return arrays["tokens"].tolist()

    def plain_speculative() -> None:
        loaded, _ = load()
        built = build_scheme(loaded.model, args.draft)
        tok = loaded.tokenizer
        prompts = [encode_prompt(tok, p.text) for p in load_prompts("default")[: args.limit]]
        t0 = time.perf_counter()
        for i, ids in enumerate(prompts):
            speculative_generate(
                built.target,
                built.drafts,
                ids,
                args.gamma,
                args.max_new_tokens,
                SamplingConfig(),
                seed=i,
                eos_token_id=tok.eos_token_id,
            )
        note("speculative decoding without recorder", time.perf_counter() - t0)

    def cli(draft_args: list[str], name: str) -> None:
        cmd = [
            sys.executable,
            "-m",
            "specsim.cli.main",
            "trace",
            "--model",
            args.model,
            "--limit",
            str(args.limit),
            "--max-new-tokens",
            str(args.max_new_tokens),
            "--verify",
            "greedy",
            "--seed",
            "0",
            *draft_args,
            "-o",
            str(tmp / f"{name}.npz"),
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        note(f"cli {name}", time.perf_counter() - t0)

    print(
        f"load before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cpus, {torch.get_num_threads()} torch threads; "
        f"{args.draft} gamma {args.gamma}, {args.limit} prompts x {args.max_new_tokens} tokens, greedy",
        flush=True,
    )
    if args.cold:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        capture(cfg, progress=False, cache=False, timings=timings)
        print(
            f"cold (no cache): capture {time.perf_counter() - t0:.1f} s: "
            + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
            flush=True,
        )
    steps = [("fp16", fp16_generate), ("trace", trace), ("plain", plain_speculative)]
    if args.cli:
        steps += [
            ("cli-speq", lambda: cli(["--draft", args.draft, "--gamma", str(args.gamma)], "speq")),
            ("cli-fp16", lambda: cli(["--draft", "none", "--no-operands", "--no-layer-stats"], "fp16")),
        ]
    for r in range(args.repeats):
        order = steps if r % 2 == 0 else steps[::-1]
        tokens = {}
        for name, fn in order:
            tokens[name] = fn()
            print(f"  repeat {r + 1}: {name} done, load {os.getloadavg()[0]:.2f}", flush=True)
        if tokens["fp16"] != tokens["trace"]:
            print("  note: model.generate's tokens differ from the trace's", flush=True)

    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\nload after: {os.getloadavg()[0]:.2f}; medians of {args.repeats} repeats (runs in brackets), seconds")
    for k, v in runs.items():
        if k != "trace layer_stats_cached":
            print(f"  {k:40s} {med[k]:7.2f}   [{', '.join(f'{x:.2f}' for x in v)}]")
    print(f"  layer statistics from the cache: {int(sum(runs.get('trace layer_stats_cached', [])))} of {args.repeats}")
    recorder = med["trace decode"] - med["speculative decoding without recorder"]
    print(f"\noperand recorder cost: {recorder:+.2f} s of {med['trace decode']:.2f} s decoding")
    print(
        f"ratio, decoding only:  trace decode / model.generate = {med['trace decode'] / med['fp16 model.generate']:.2f}x"
        f"  (/ autoregressive_generate: {med['trace decode'] / med['fp16 autoregressive_generate']:.2f}x)"
    )
    if args.cli:
        print(f"ratio, end to end:     cli speq / cli fp16 = {med['cli speq'] / med['cli fp16']:.2f}x  (target <= 2x)")


if __name__ == "__main__":
    main()
