"""The draft's lm_head as a choice: real acceptance and simulated SPEQ speedup over FP16 for each choice, per model.

For each model and ``--draft-lm-head`` choice this records a real SPEQ trace (BSFP draft, gamma 4, greedy,
the first ``--limit`` shipped prompts x ``--max-new-tokens`` tokens) and an FP16 trace of the same prompts,
replays both on the shipped SPEQ array (``hwconfigs/speq.yaml``'s hardware, like for like) and prints alpha,
the draft pass's DRAM bytes as a share of the verify pass's, and SPEQ's decode speedup over FP16 (95 % CI
over the prompts). Usage::

    PYTHONPATH=. python benchmarks/lm_head_table.py --models smollm2-135m,gemma3-270m --out results/lm_head
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

#: choice -> (decoding.lm_head_formats, decoding.lm_head_modes) of the run config that replays it
CHOICES = {
    "fp16": (["fp16", "fp16"], None),
    "same": (["fp16", "bsfp_draft"], None),
    "int8": (["fp16", "int8"], ["fp16", "w8a16"]),
}


def record(model: str, draft: str, head: str, path: Path, limit: int, tokens: int) -> None:
    from specsim.trace.tracefile import write_trace
    from specsim.workload.capture import CaptureConfig, capture

    if path.exists():
        return
    cfg = CaptureConfig(
        model=model, draft=draft, gamma=4, limit=limit, max_new_tokens=tokens, seed=0, draft_lm_head=head
    )
    header, arrays = capture(cfg, progress=False)
    write_trace(path, header, arrays)


def replay(folder: Path, model: str, head: str, speq_trace: Path, fp16_trace: Path) -> dict:
    from specsim.results.config import load_run_config
    from specsim.results.run import run

    heads, modes = CHOICES[head]
    (folder / "fp16.yaml").write_text(
        yaml.safe_dump({"name": "fp16", "hardware": "speq", "decoding": {"kind": "autoregressive"}})
    )
    decoding = {
        "method": "speq",
        "draft": "speq",
        "level_modes": ["fp16", "quarter"],
        "fp16_mode": "bsfp16",
        "formats": ["fp16", "bsfp_draft"],
        "lm_head_formats": heads,
        **({"lm_head_modes": modes} if modes else {}),
    }
    config = {
        "name": "speq",
        "hardware": {"include": "speq"},
        "decoding": decoding,
        "baselines": {"fp16": "fp16.yaml"},
        "workloads": [{"name": model, "traces": {"speq": str(speq_trace), "fp16": str(fp16_trace)}}],
    }
    path = folder / f"{model}_{head}.yaml"
    path.write_text(yaml.safe_dump(config))
    report = run(load_run_config(path), progress=False)
    w = report["workloads"][0]
    steps = w["accelerators"]["speq"]["steps"]
    return {
        "speedup": w["speedup"]["fp16"],
        "ci": w["speedup_ci"].get("fp16"),
        "draft_share": steps["draft"]["dram_bytes"] / steps["verify"]["dram_bytes"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="smollm2-135m,gemma3-270m")
    ap.add_argument("--choices", default=",".join(CHOICES))
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--out", default="results/lm_head", help="folder for the traces and configs (kept: reruns reuse)")
    args = ap.parse_args()
    from specsim.trace.tracefile import read_trace, summarize

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| model | draft lm_head | alpha | draft pass bytes / verify pass bytes | SPEQ speedup over FP16 (95 % CI) |")
    print("|---|---|---|---|---|")
    for model in args.models.split(","):
        fp16 = out / f"{model}_fp16.npz"
        record(model, "none", "fp16", fp16, args.limit, args.max_new_tokens)
        for head in args.choices.split(","):
            trace = out / f"{model}_speq_{head}.npz"
            record(model, "speq", head, trace, args.limit, args.max_new_tokens)
            alpha = summarize(read_trace(trace)).alpha
            r = replay(out, model, head, trace, fp16)
            ci = f" ({r['ci'][0]:.3f}-{r['ci'][1]:.3f})" if r["ci"] else ""
            print(f"| {model} | {head} | {alpha:.3f} | {r['draft_share']:.3f} | {r['speedup']:.3f}{ci} |", flush=True)


if __name__ == "__main__":
    main()
