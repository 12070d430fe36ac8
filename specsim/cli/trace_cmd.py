"""``specsim trace``: record acceptance events of real speculative decoding, or inspect a trace."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "trace",
        help="run a real model under a draft scheme and record acceptance events and operand traces",
        description=(
            "Run speculative decoding on a real model over a prompt set (draft gamma tokens, verify gamma+1 "
            "positions in one target pass, roll the KV caches back; chains of drafts of any depth), or plain "
            "or quantized autoregressive decoding, and write a versioned trace: acceptance events, one row per "
            "forward pass, each model's operator template and per-layer operand statistics. "
            "Inspect a trace with --inspect."
        ),
        epilog=(
            "draft schemes: speq[:layout], mxfp4 or any weight format (int4_g128, int3_g32, ...), early:N[:level], "
            "model:<name>, chains A>B>... (multilevel[:A>B]), hierarchical[:<4-bit target>/<chain>], "
            "none (FP16 autoregressive), olive[:4|8], tender[:4|8], int4 (quantized models decoding alone, "
            "with drift from FP16 measured)."
        ),
    )
    p.add_argument("--inspect", metavar="FILE", help="print a trace's header and acceptance summary")
    p.add_argument("--json", action="store_true", help="with --inspect: print one JSON object")
    p.add_argument("--model", default="smollm2-135m", help="target model (embedded alias or local HF folder)")
    p.add_argument("--draft", default="speq", help="draft scheme (see below); default speq")
    p.add_argument("--gamma", type=int, default=4, help="draft tokens per round (1..32)")
    p.add_argument("--inner-gamma", type=int, default=None, help="draft tokens per round of inner chain levels "
                   "(default: --gamma)")
    p.add_argument("--prompts", default="default", help="shipped prompt set name or a .jsonl file")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N prompts")
    p.add_argument("--max-new-tokens", type=int, default=128, help="tokens generated per prompt")
    p.add_argument("--verify", choices=("greedy", "sample"), default="greedy", help="verification rule")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-operands", action="store_true", help="skip the operand trace (no forward hooks)")
    p.add_argument("--no-layer-stats", action="store_true", help="skip per-layer operand statistics (~15 s)")
    p.add_argument("-o", "--output", metavar="FILE.npz", help="trace file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specsim.errors import SpecsimError
    from specsim.workload.capture import CaptureConfig

    if args.inspect:
        return inspect(args.inspect, args.json)
    if not args.output:
        raise SpecsimError("-o/--output: a trace file to write is required (or use --inspect FILE)")
    if not args.output.endswith(".npz"):
        raise SpecsimError(f"-o/--output: '{args.output}' must end in .npz")
    cfg = CaptureConfig(
        model=args.model, draft=args.draft, gamma=args.gamma, inner_gamma=args.inner_gamma, prompts=args.prompts,
        limit=args.limit, max_new_tokens=args.max_new_tokens, verify=args.verify, temperature=args.temperature,
        top_p=args.top_p, seed=args.seed, operands=not args.no_operands, layer_stats=not args.no_layer_stats,
    )
    cfg.validate()
    return record(cfg, args.output)


def record(cfg, output: str) -> int:
    from specsim.workload.capture import capture
    from specsim.workload.tracefile import read_trace, summarize, write_trace

    header, arrays = capture(cfg)
    digest = write_trace(output, header, arrays)
    trace = read_trace(output)
    s = summarize(trace)
    line = f"wrote {output}: {s.tokens_generated} tokens"
    if header["mode"] == "speculative":
        line += f", {s.rounds} rounds, {s.mean_tokens_per_round:.2f} tokens/round, alpha {s.alpha:.3f}"
    if "drift" in header:
        d = header["drift"]
        line += (f", agreement with FP16 {d['token_agreement']:.3f}, perplexity {d['perplexity']:.2f} "
                 f"(FP16 {d['perplexity_fp16']:.2f})")
    print(f"{line}, {sum(s.steps_by_phase.values())} steps, payload {digest[:16]}")
    return 0


def inspect(path: str, as_json: bool) -> int:
    from dataclasses import asdict

    from specsim.workload.tracefile import read_trace, summarize

    trace = read_trace(path)
    summary = summarize(trace)
    if as_json:
        json.dump({"header": trace.header, "summary": asdict(summary)}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.table import Table

    from specsim.cli import make_console

    h = trace.header
    table = Table(title=f"{path}: {h['model']} draft={h['draft']} gamma={h['gamma']} verify={h['verify']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("mode", h["mode"]),
        ("levels (weight format)", ", ".join(f"{n} ({f})" for n, f in zip(h["levels"], h["level_formats"]))),
        ("prompts", str(h.get("prompt_count", trace["prompt_len"].size))),
        ("tokens generated", str(summary.tokens_generated)),
    ]
    if h["mode"] == "speculative":
        rows += [
            ("rounds (target verify steps)", str(summary.rounds)),
            ("mean accepted draft tokens / round", f"{summary.mean_accepted_per_round:.3f}"),
            ("mean tokens / round (incl. target token)", f"{summary.mean_tokens_per_round:.3f}"),
            ("alpha estimate", f"{summary.alpha:.3f}"),
            ("per-position acceptance", " ".join(f"{x:.2f}" for x in summary.position_acceptance)),
        ]
        if len(summary.level_alpha) > 1:
            rows.append(("alpha per verifying level", " ".join(f"{x:.3f}" for x in summary.level_alpha)))
    for key, value in h.get("drift", {}).items():
        rows.append((f"drift: {key}", f"{value:.4g}"))
    rows += [
        ("forward passes by phase", ", ".join(f"{p} {n}" for p, n in summary.steps_by_phase.items() if n)),
        ("ops per step, per level", " ".join(str(n) for n in summary.ops_per_step)),
        ("payload sha256", h["payload_sha256"][:16] + "..."),
    ]
    for k, v in rows:
        table.add_row(k, v)
    make_console().print(table)
    return 0
