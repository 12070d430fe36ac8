"""``specsim trace``: record acceptance events of real speculative decoding, or inspect a trace."""

from __future__ import annotations

import argparse
import json
import sys

from specsim.cli.args import integer, number, require_workload_extra


def register(sub) -> None:
    p = sub.add_parser(
        "trace",
        help="run a real model under a draft scheme and record acceptance events and operand traces",
        description=(
            "Run speculative decoding on a real model over a prompt set (draft gamma tokens, verify gamma+1 "
            "positions in one target pass, roll the KV caches back; chains of drafts of any depth), or plain "
            "or quantized autoregressive decoding, and write a versioned trace: acceptance events, one row per "
            "forward pass, each model's operator template and per-layer operand statistics. "
            "Inspect a trace with --inspect. Time on 2 cores, SmolLM2-135M, 5 prompts x 64 tokens: about 30 s "
            "for speq gamma 4 (plain FP16 decoding of the same prompts: about 15 s); the first run of a model and "
            "format adds about 15 s for layer statistics and the draft's weights, then kept in the cache."
        ),
        epilog=(
            "draft schemes: speq[:layout], mxfp4 or any weight format (int4_g128, int3_g32, ...), early:N[:level], "
            "model:<name>, chains A>B>... (multilevel[:A>B]), hierarchical[:<4-bit target>/<chain>], "
            "none (FP16 autoregressive), olive[:4|8], tender[:4|8], int4[:g128] (quantized models decoding alone, "
            "with drift from FP16 measured)."
        ),
    )
    p.add_argument("--inspect", metavar="FILE", help="print a trace's header and acceptance summary")
    p.add_argument("--json", action="store_true", help="with --inspect: print one JSON object")
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="target model: embedded alias, local Hugging Face folder, or a .gguf file (converted once into the cache)",
    )
    p.add_argument("--draft", default="speq", help="draft scheme (see below); default speq")
    p.add_argument("--gamma", type=integer("gamma"), default=4, help="draft tokens per round (1..32)")
    p.add_argument(
        "--inner-gamma",
        type=integer("gamma"),
        default=None,
        help="draft tokens per round of inner chain levels, 1..32 (default: --gamma)",
    )
    p.add_argument(
        "--draft-lm-head",
        default="fp16",
        metavar="FORMAT",
        help="lm_head weights of every draft level: fp16 (default), same (the level's own format), speq[:layout] "
        "(BSFP top nibble of the FP16 lm_head), int8, mxfp4 or another weight format; the target's stays FP16",
    )
    p.add_argument("--prompts", default="default", help="shipped prompt set name or a .jsonl file")
    p.add_argument(
        "--limit",
        type=integer("prompts"),
        default=None,
        metavar="N",
        help="only the first N prompts, 1..100000 (with --shape: number of prompts, 1..256, default 8)",
    )
    p.add_argument(
        "--max-new-tokens", type=integer("new_tokens"), default=128, help="tokens generated per prompt (1..16384)"
    )
    p.add_argument("--verify", choices=("greedy", "sample"), default="greedy", help="verification rule")
    p.add_argument("--temperature", type=number(0, 100, low_open=True), default=1.0, help="(0, 100]")
    p.add_argument("--top-p", type=number(0, 1, low_open=True), default=1.0, help="(0, 1]")
    p.add_argument("--seed", type=integer("seed"), default=0)
    p.add_argument("--no-operands", action="store_true", help="skip the operand trace (no forward hooks)")
    p.add_argument(
        "--no-layer-stats",
        action="store_true",
        help="skip per-layer operand statistics (SmolLM2-135M: about 11 s on 2 cores "
        "the first time, then read from the cache)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="compute layer statistics and draft weight views afresh instead of reading or writing "
        "them in the cache ($SPECSIM_CACHE or ~/.cache/specsim; the trace is the same either way)",
    )
    shape = p.add_argument_group(
        "shape-only workloads",
        "models too large to run: operators from a shipped architecture file, passes "
        "scheduled from an acceptance profile; the trace is marked SHAPE-DERIVED",
    )
    shape.add_argument("--shape", metavar="ARCH", help="architecture name (e.g. llama-2-7b) or YAML file")
    shape.add_argument("--alpha", type=number(0, 1), default=None, help="parametric i.i.d. acceptance rate, [0, 1]")
    shape.add_argument(
        "--acceptance-from",
        metavar="TRACE",
        default=None,
        help="take per-position acceptance from a real trace instead",
    )
    shape.add_argument(
        "--prompt-len",
        type=integer("prompt_len"),
        default=128,
        help="prompt tokens per prompt, 1..131072 (default 128)",
    )
    p.add_argument("-o", "--output", metavar="FILE.npz", help="trace file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specsim.errors import SpecsimError
    from specsim.outputs import check_output_file
    from specsim.trace.tracefile import is_trace_file

    if args.inspect:
        return inspect(args.inspect, args.json)
    if not args.output:
        raise SpecsimError("-o/--output: a trace file to write is required (or use --inspect FILE)")
    check_output_file(args.output, "-o", (".npz",), is_trace_file, "a trace")  # before any model loads
    if args.shape:
        return record_shape(args)
    require_workload_extra("trace")
    from specsim.workload.capture import CaptureConfig  # torch: only to record real-model traces

    cfg = CaptureConfig(
        model=args.model,
        draft=args.draft,
        gamma=args.gamma,
        inner_gamma=args.inner_gamma,
        prompts=args.prompts,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        verify=args.verify,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        operands=not args.no_operands,
        draft_lm_head=args.draft_lm_head,
        layer_stats=not args.no_layer_stats,
    )
    cfg.validate()
    return record(cfg, args.output, cache=not args.no_cache)


def record(cfg, output: str, cache: bool = True) -> int:
    from specsim.trace.tracefile import read_trace, summarize, write_trace
    from specsim.workload.capture import capture

    header, arrays = capture(cfg, cache=cache)
    digest = write_trace(output, header, arrays)
    trace = read_trace(output)
    s = summarize(trace)
    line = f"wrote {output}: {s.tokens_generated} tokens"
    if header["mode"] == "speculative":
        line += f", {s.rounds} rounds, {s.mean_tokens_per_round:.2f} tokens/round, alpha {s.alpha:.3f}"
    if "drift" in header:
        d = header["drift"]
        line += (
            f", agreement with FP16 {d['token_agreement']:.3f}, perplexity {d['perplexity']:.2f} "
            f"(FP16 {d['perplexity_fp16']:.2f})"
        )
    print(f"{line}, {sum(s.steps_by_phase.values())} steps, payload {digest[:16]}")
    return 0


def record_shape(args: argparse.Namespace) -> int:
    """A shape-derived trace: architecture file + acceptance profile (no model runs; no torch)."""
    from specsim.errors import SpecsimError
    from specsim.results.config import ShapeWorkload
    from specsim.results.decoding import shape_workload_trace
    from specsim.trace.schedule import shape_draft_format, shape_lm_head_format
    from specsim.trace.tracefile import read_trace, write_trace
    from specsim.typedconfig import build

    draft_format = shape_draft_format(args.draft)
    if draft_format is not None and (args.alpha is None) == (args.acceptance_from is None):
        raise SpecsimError("--shape: give exactly one of --alpha A or --acceptance-from TRACE")
    shape = build(
        ShapeWorkload,
        {
            "architecture": args.shape,
            "prompts": args.limit or 8,
            "prompt_len": args.prompt_len,
            "max_new_tokens": args.max_new_tokens,
            "seed": args.seed,
        },
        "--shape",
    )
    acceptance = (
        args.alpha if args.alpha is not None else (read_trace(args.acceptance_from) if args.acceptance_from else None)
    )
    head = shape_lm_head_format(args.draft_lm_head, args.draft, draft_format)
    trace = shape_workload_trace(
        shape,
        draft_format,
        args.gamma,
        acceptance,
        workload=args.shape,
        draft_lm_head=head,
    )
    digest = write_trace(args.output, trace.header, trace.arrays)
    read_trace(args.output)
    print(
        f"wrote {args.output}: {trace.header['shape_note']}; {shape.prompts} prompts x {shape.max_new_tokens} "
        f"tokens, {trace['step_level'].size} steps, payload {digest[:16]}"
    )
    return 0


def inspect(path: str, as_json: bool) -> int:
    from dataclasses import asdict

    from specsim.trace.tracefile import lm_head_formats, read_trace, summarize, tree_summaries

    trace = read_trace(path)
    summary = summarize(trace)
    trees = tree_summaries(trace)
    if as_json:
        out = {"header": trace.header, "summary": asdict(summary), "trees": [asdict(t) for t in trees]}
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from rich.table import Table

    from specsim.cli import make_console

    h = trace.header
    table = Table(title=f"{path}: {h['model']} draft={h['draft']} gamma={h['gamma']} verify={h['verify']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [("SOURCE", str(h.get("shape_note", "SHAPE-DERIVED")))] if h.get("source") == "shape" else []
    rows += [
        ("mode", h["mode"]),
        ("levels (weight format)", ", ".join(f"{n} ({f})" for n, f in zip(h["levels"], h["level_formats"]))),
        ("lm_head format per level", ", ".join(lm_head_formats(h))),
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
    for t in trees:
        where = f"tree of level {t.level + 1}"
        rows += [
            (f"{where}: nodes, depth", f"{t.nodes:.1f}, {t.depth}"),
            (f"{where}: accepted / round (mean)", f"{t.mean_accepted:.3f}"),
            (f"{where}: rounds accepting 0..{t.depth}", " ".join(map(str, t.accepted_histogram))),
            (f"{where}: acceptance by depth", " ".join(f"{x:.2f}" for x in t.depth_acceptance)),
            (
                f"{where}: sibling rank of accepted nodes",
                "; ".join(f"d{d + 1} " + "/".join(f"{x:.2f}" for x in s) for d, s in enumerate(t.rank_share)),
            ),
        ]
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
