"""``specsim formats``: apply every number format to every linear layer of a real model."""

from __future__ import annotations

import argparse
import json
import math
import sys

from specsim.cli.args import integer, require_workload_extra


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
    p.add_argument(
        "--model",
        default="smollm2-135m",
        help="embedded alias, local Hugging Face folder or a .gguf file (converted once into the cache)",
    )
    p.add_argument("--formats", default=None, help="comma-separated format names (default: all)")
    p.add_argument(
        "--layers", type=integer("layers"), default=None, metavar="N", help="only the first N linear layers (1..100000)"
    )
    p.add_argument("--no-activations", action="store_true", help="skip the activation measurements")
    p.add_argument(
        "--agreement",
        action="store_true",
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
    require_workload_extra("formats")
    from specsim.workload.format_report import evaluate_model

    names = [n.strip() for n in args.formats.split(",") if n.strip()] if args.formats else None
    result = evaluate_model(
        args.model, names, layers=args.layers, agreement=args.agreement, activations=not args.no_activations
    )
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    _print_table(args.model, result, args.agreement)
    return 0


def _print_table(model: str, result, agreement: bool) -> None:
    from rich.table import Table

    from specsim.cli import make_console

    table = Table(title=f"{model}: {result.layers} linear layers, {result.weights / 1e6:.1f} M weights (FP16 target)")
    columns = [
        "format",
        "bits/w fetched",
        "bits/w stored",
        "SQNR dB",
        "max |err|",
        "outlier frac",
        "FP16 mismatches",
        "act SQNR dB",
    ] + (["greedy agree"] if agreement else [])
    for col in columns:
        table.add_column(col, justify="left" if col == "format" else "right", no_wrap=col == "format")
    for n, s in result.formats.items():
        table.add_row(
            n,
            f"{s.bits_per_weight:.3f}",
            f"{s.stored_bits_per_weight:.3f}",
            _fmt(s.sqnr_db, ".2f"),
            f"{s.max_abs_err:.4g}",
            f"{s.outlier_fraction:.2e}",
            "" if s.roundtrip_mismatches is None else str(s.roundtrip_mismatches),
            "" if s.activation_sqnr_db is None else _fmt(s.activation_sqnr_db, ".2f"),
            *([f"{s.greedy_agreement:.3f}"] if agreement else []),
        )
    console = make_console()
    console.print(table)
    console.print(f"done in {result.seconds:.1f} s (model load {result.load_seconds:.1f} s)")
