"""``specsim trace``: record acceptance events of real speculative decoding, or inspect a trace."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    p = sub.add_parser(
        "trace",
        help="run real speculative decoding and record its acceptance events to a trace file",
        description=(
            "Run speculative decoding on a real model over a prompt set (draft gamma tokens, verify gamma+1 "
            "positions in one target pass, roll the KV caches back) and write the acceptance events to a "
            "versioned trace file; or inspect a trace with --inspect. Operand traces are not recorded yet."
        ),
    )
    p.add_argument("--inspect", metavar="FILE", help="print a trace's header and acceptance summary")
    p.add_argument("--json", action="store_true", help="with --inspect: print one JSON object")
    p.add_argument("--model", default="smollm2-135m", help="target model (embedded alias or local HF folder)")
    p.add_argument("--draft", default="speq", help="draft scheme: speq[:layout], mxfp4, a format name, model:<name>")
    p.add_argument("--gamma", type=int, default=4, help="draft tokens per round (1..32)")
    p.add_argument("--prompts", default="default", help="shipped prompt set name or a .jsonl file")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N prompts")
    p.add_argument("--max-new-tokens", type=int, default=128, help="tokens generated per prompt")
    p.add_argument("--verify", choices=("greedy", "sample"), default="greedy", help="verification rule")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", metavar="FILE.npz", help="trace file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specsim.errors import SpecsimError

    if args.inspect:
        return inspect(args.inspect, args.json)
    if not args.output:
        raise SpecsimError("-o/--output: a trace file to write is required (or use --inspect FILE)")
    if not args.output.endswith(".npz"):
        raise SpecsimError(f"-o/--output: '{args.output}' must end in .npz")
    if not 1 <= args.gamma <= 32:
        raise SpecsimError(f"--gamma: expected 1..32, got {args.gamma}")
    if args.max_new_tokens < 1:
        raise SpecsimError(f"--max-new-tokens: expected a positive integer, got {args.max_new_tokens}")
    if args.limit is not None and args.limit < 1:
        raise SpecsimError(f"--limit: expected a positive integer, got {args.limit}")
    return record(args)


def record(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    import transformers
    from tqdm import tqdm

    import specsim
    from specsim.workload.models import load_model
    from specsim.workload.prompts import load_prompts, prompts_hash
    from specsim.workload.drafts import build_draft
    from specsim.workload.speculative import SamplingConfig, speculative_generate
    from specsim.workload.tracefile import summarize, read_trace, write_trace

    sampling = SamplingConfig(args.verify, args.temperature, args.top_p)
    prompts = load_prompts(args.prompts)[: args.limit]
    loaded = load_model(args.model)
    draft = build_draft(loaded.model, args.draft)
    rounds_p, rounds_d, rounds_a, plen, glen, tokens = [], [], [], [], [], []
    for i, prompt in enumerate(tqdm(prompts, desc=f"trace {args.draft} gamma={args.gamma}", unit="prompt",
                                    file=sys.stderr, disable=None)):
        ids = loaded.tokenizer(prompt.text).input_ids
        out = speculative_generate(loaded.model, draft, ids, args.gamma, args.max_new_tokens, sampling,
                                   seed=args.seed + i, eos_token_id=loaded.tokenizer.eos_token_id)
        for r in out.rounds:
            rounds_p.append(i)
            rounds_d.append(r.drafted)
            rounds_a.append(r.accepted)
        plen.append(len(ids))
        glen.append(len(out.tokens))
        tokens.extend(out.tokens)
    header = {
        "model": args.model, "draft": args.draft, "gamma": args.gamma, "verify": args.verify,
        "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed,
        "max_new_tokens": args.max_new_tokens, "prompts": args.prompts, "prompt_count": len(prompts),
        "prompts_sha256": prompts_hash(prompts),
        "packages": {"specsim": specsim.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__},
    }
    arrays = {"round_prompt": rounds_p, "round_drafted": rounds_d, "round_accepted": rounds_a,
              "prompt_len": plen, "generated_len": glen, "tokens": tokens}
    digest = write_trace(args.output, header, {k: np.asarray(v) for k, v in arrays.items()})
    s = summarize(read_trace(args.output))
    print(f"wrote {args.output}: {s.rounds} rounds, {s.tokens_generated} tokens, "
          f"{s.mean_tokens_per_round:.2f} tokens/round, alpha {s.alpha:.3f}, payload {digest[:16]}")
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
        ("prompts", str(h.get("prompt_count", trace["prompt_len"].size))),
        ("tokens generated", str(summary.tokens_generated)),
        ("rounds (verify steps)", str(summary.rounds)),
        ("mean accepted draft tokens / round", f"{summary.mean_accepted_per_round:.3f}"),
        ("mean tokens / round (incl. target token)", f"{summary.mean_tokens_per_round:.3f}"),
        ("alpha estimate", f"{summary.alpha:.3f}"),
        ("per-position acceptance", " ".join(f"{x:.2f}" for x in summary.position_acceptance)),
        ("payload sha256", h["payload_sha256"][:16] + "..."),
    ]
    for k, v in rows:
        table.add_row(k, v)
    make_console().print(table)
    return 0
