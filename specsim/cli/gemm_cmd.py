"""``specsim gemm``: simulate one GEMM on a PE array and print cycles, traffic, energy and utilization."""

from __future__ import annotations

import argparse
import json

from specsim.cli.args import integer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gemm",
        help="simulate one GEMM (M x K) @ (K x N) on the PE array",
        description="Simulate one GEMM out[M,N] = A[M,K] @ W[K,N] on the PE array of a hardware config and "
        "print compute/total/stall cycles, MACs, DRAM and SRAM bytes, energy and utilization. "
        "With --ideal-memory --scalesim-compatible, compute_cycles equals SCALE-Sim v3's "
        "'Total Cycles' for the same array, dataflow and shape.",
    )
    p.add_argument("--m", type=integer("gemm_dim"), required=True, help="output rows (tokens), 1..2^31")
    p.add_argument("--n", type=integer("gemm_dim"), required=True, help="output columns, 1..2^31")
    p.add_argument("--k", type=integer("gemm_dim"), required=True, help="reduction length, 1..2^31")
    p.add_argument(
        "--rows", type=integer("array_dim"), default=None, help="PE rows, 1..65536 (default: from the config)"
    )
    p.add_argument(
        "--cols", type=integer("array_dim"), default=None, help="PE columns, 1..65536 (default: from the config)"
    )
    p.add_argument("--dataflow", choices=("ws", "os", "is"), default=None, help="default: from the config")
    p.add_argument("--mode", default="fp16", help="PE mode (the config's modes: fp16, quarter, int4, int8, mxfp4)")
    p.add_argument("--config", default="speq", help="hardware YAML, or a shipped name (default: speq)")
    p.add_argument("--ideal-memory", action="store_true", help="memory costs no time (compute only)")
    p.add_argument(
        "--scalesim-compatible",
        action="store_true",
        help="SCALE-Sim v3 fold timing (stationary preload per fold, folds never overlap)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specsim.results.gemm import gemm_report

    report = gemm_report(
        args.config,
        args.m,
        args.n,
        args.k,
        args.mode,
        rows=args.rows,
        cols=args.cols,
        dataflow=args.dataflow,
        ideal_memory=args.ideal_memory,
        scalesim_compatible=args.scalesim_compatible,
    )
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"GEMM {args.m}x{args.n}x{args.k} ({args.mode}) on {report['rows']}x{report['cols']} "
        f"{report['dataflow'].upper()}",
        show_header=True,
    )
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key in (
        "compute_cycles",
        "total_cycles",
        "stall_cycles",
        "folds",
        "macs",
        "utilization",
        "dram_bytes",
        "compulsory_dram_bytes",
        "sram_bytes",
        "energy_pj",
        "latency_s",
    ):
        v = report[key]
        t.add_row(key, f"{v:.4g}" if isinstance(v, float) else f"{v:,}")
    for cause, v in report["stall_cycles_by_cause"].items():
        if v:
            t.add_row(f"  stall: {cause}", f"{v:,}")
    for part, pj in report["energy_breakdown_pj"].items():
        t.add_row(f"  energy: {part} (pJ)", f"{pj:.4g}")
    Console(markup=False).print(t)
    return 0
