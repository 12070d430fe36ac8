"""``specsim formats``: apply every number format to every linear layer of a real model."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from specsim.cli.args import integer


def register(sub) -> None:
    p = sub.add_parser(
        "formats",
        help="apply every draft/quantization format to a real model's linear layers and report errors",
        description=(
            "Apply BSFP (SPEQ), MXFP4, OliVe, Tender and INT formats bit-exactly to every decoder linear "
            "layer of a real model (FP16 weights) and report bits per weight, SQNR, max abs error, outlier "
            "fraction, BSFP round-trip exactness and, for formats that quantize activations, the SQNR of "
            "the layers' real input activations on a shipped calibration text."
        ),
    )
    p.add_argument("--model", default="smollm2-135m", help="embedded alias, local HF folder or cached hub id")
    p.add_argument("--formats", default=None, help="comma-separated format names (default: all)")
    p.add_argument("--layers", type=integer("layers"), default=None, metavar="N",
                   help="only the first N linear layers (1..100000)")
    p.add_argument("--no-activations", action="store_true", help="skip the activation measurements")
    p.add_argument(
        "--agreement", action="store_true",
        help="also measure each format's teacher-forced greedy agreement with the FP16 model (the "
        "acceptance probability of a greedy draft with those weights) on the calibration text",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def _fmt(v: float | None, spec: str) -> str:
    if v is None:
        return "lossless"
    if isinstance(v, float) and math.isinf(v):
        return "-inf"
    return format(v, spec)


def run(args: argparse.Namespace) -> int:
    from specsim.errors import SpecsimError
    from specsim.workload import format_report as fr
    from specsim.workload.prompts import shipped_text
    from specsim.workload.formats import FORMAT_NAMES

    names = list(FORMAT_NAMES) if not args.formats else [n.strip() for n in args.formats.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMAT_NAMES]
    if unknown or not names:
        raise SpecsimError(f"--formats: unknown format '{unknown[0] if unknown else ''}'; expected one of: {', '.join(FORMAT_NAMES)}")
    if args.layers is not None and args.layers < 1:
        raise SpecsimError("--layers: expected a positive integer")

    from tqdm import tqdm

    from specsim.workload.models import decoder_linears, load_model

    start = time.perf_counter()
    loaded = load_model(args.model, tokenizer=args.agreement or not args.no_activations)
    linears = decoder_linears(loaded.model)[: args.layers]
    weights = [(name, module.weight) for name, module in linears]
    agreement: dict[str, float] = {}
    on_format = None
    if args.agreement:
        import torch

        ids = loaded.tokenizer(shipped_text("calibration"), return_tensors="pt").input_ids[:, : fr.AGREEMENT_TOKENS]
        with torch.no_grad():
            reference = loaded.model(ids).logits[0].argmax(dim=-1)

        def on_format(name, approximations):
            agreement[name] = fr.greedy_agreement(loaded.model, linears, ids, approximations, reference)

    groups = len({fr.bsfp_group(n) for n in names})
    bar = tqdm(total=len(weights) * groups, desc="formats", unit="layer", file=sys.stderr, disable=None)
    stats = fr.evaluate_weights(weights, names, progress=lambda _layer: bar.update(), on_format=on_format)
    bar.close()
    for name, value in agreement.items():
        stats[name].greedy_agreement = value
    weights_done = time.perf_counter()
    if not args.no_activations:
        keep = {name for name, _ in linears}
        inputs = fr.capture_linear_inputs(loaded.model, loaded.tokenizer, shipped_text("calibration"))
        for name, sqnr in fr.evaluate_activations({k: v for k, v in inputs.items() if k in keep}, names).items():
            stats[name].activation_sqnr_db = sqnr
    elapsed = time.perf_counter() - start
    n_weights = sum(w.numel() for _, w in weights)

    if args.json:
        out = {
            "model": args.model,
            "layers": len(weights),
            "weights": n_weights,
            "seconds": round(elapsed, 2),
            "seconds_breakdown": {
                "model_load": round(loaded.load_seconds, 2),
                "weights": round(weights_done - start - loaded.load_seconds, 2),
                "activations": round(elapsed - (weights_done - start), 2),
            },
            "formats": {n: s.to_json() for n, s in stats.items()},
        }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

    from rich.table import Table

    from specsim.cli import make_console

    table = Table(title=f"{args.model}: {len(weights)} linear layers, {n_weights / 1e6:.1f} M weights (FP16 target)")
    columns = ["format", "bits/w fetched", "bits/w stored", "SQNR dB", "max |err|", "outlier frac",
               "FP16 mismatches", "act SQNR dB"] + (["greedy agree"] if args.agreement else [])
    for col in columns:
        table.add_column(col, justify="left" if col == "format" else "right", no_wrap=col == "format")
    for n, s in stats.items():
        table.add_row(
            n,
            f"{s.bits_per_weight:.3f}",
            f"{s.stored_bits_per_weight:.3f}",
            _fmt(s.sqnr_db, ".2f"),
            f"{s.max_abs_err:.4g}",
            f"{s.outlier_fraction:.2e}",
            "" if s.roundtrip_mismatches is None else str(s.roundtrip_mismatches),
            "" if s.activation_sqnr_db is None else _fmt(s.activation_sqnr_db, ".2f"),
            *([f"{s.greedy_agreement:.3f}"] if args.agreement else []),
        )
    console = make_console()
    console.print(table)
    console.print(f"done in {elapsed:.1f} s (model load {loaded.load_seconds:.1f} s)")
    return 0
