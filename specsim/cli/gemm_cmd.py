"""``specsim gemm``: simulate one GEMM on a PE array and print cycles, traffic, energy and utilization."""

from __future__ import annotations

import argparse
import json

from specsim.cli.args import integer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gemm", help="simulate one GEMM (M x K) @ (K x N) on the PE array",
        description="Simulate one GEMM out[M,N] = A[M,K] @ W[K,N] on the PE array of a hardware config and "
                    "print compute/total/stall cycles, MACs, DRAM and SRAM bytes, energy and utilization. "
                    "With --ideal-memory --scalesim-compatible, compute_cycles equals SCALE-Sim v3's "
                    "'Total Cycles' for the same array, dataflow and shape.")
    p.add_argument("--m", type=integer("gemm_dim"), required=True, help="output rows (tokens), 1..2^31")
    p.add_argument("--n", type=integer("gemm_dim"), required=True, help="output columns, 1..2^31")
    p.add_argument("--k", type=integer("gemm_dim"), required=True, help="reduction length, 1..2^31")
    p.add_argument("--rows", type=integer("array_dim"), default=None, help="PE rows, 1..65536 (default: from the config)")
    p.add_argument("--cols", type=integer("array_dim"), default=None, help="PE columns, 1..65536 (default: from the config)")
    p.add_argument("--dataflow", choices=("ws", "os", "is"), default=None, help="default: from the config")
    p.add_argument("--mode", default="fp16", help="PE mode (the config's modes: fp16, quarter, int4, int8, mxfp4)")
    p.add_argument("--config", default="speq", help="hardware YAML, or a shipped name (default: speq)")
    p.add_argument("--ideal-memory", action="store_true", help="memory costs no time (compute only)")
    p.add_argument("--scalesim-compatible", action="store_true",
                   help="SCALE-Sim v3 fold timing (stationary preload per fold, folds never overlap)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def gemm_report(args: argparse.Namespace) -> dict:
    """The result object ``specsim gemm --json`` prints."""
    from specsim.engine import simulate
    from specsim.hardware.config import load_hardware
    from specsim.hardware.energy import energy_breakdown, energy_table_for, group_breakdown
    from specsim.hardware.ops import gemm_table

    hw = load_hardware(args.config)
    if args.rows or args.cols or args.dataflow:
        hw = hw.with_array(args.rows or hw.array.rows, args.cols or hw.array.cols, args.dataflow)
    hw.mode(args.mode)
    table = energy_table_for(hw)
    result = simulate(hw, gemm_table(args.m, args.n, args.k, args.mode, tuple(hw.modes)),
                      ideal_memory=args.ideal_memory, scalesim_compatible=args.scalesim_compatible)
    actions = result.actions()
    energy = energy_breakdown(actions, table, hw)
    peak = int(result.mapping.peak_macs_per_cycle[0])
    macs = int(result.mapping.macs[0])
    return {
        "config": hw.path, "rows": hw.array.rows, "cols": hw.array.cols, "dataflow": hw.array.dataflow,
        "mode": args.mode, "m": args.m, "n": args.n, "k": args.k,
        "ideal_memory": args.ideal_memory, "scalesim_compatible": args.scalesim_compatible,
        "compute_cycles": result.compute_cycles, "total_cycles": result.total_cycles,
        "stall_cycles": result.stall_cycles, "stall_cycles_by_cause": result.stalls_by_cause(),
        "folds": int(result.mapping.folds[0]), "macs": macs, "peak_macs_per_cycle": peak,
        "utilization": macs / (result.total_cycles * peak) if result.total_cycles else 0.0,
        "dram_bytes": actions.dram_read_bytes + actions.dram_write_bytes,
        "dram_read_bytes": actions.dram_read_bytes, "dram_write_bytes": actions.dram_write_bytes,
        "compulsory_dram_bytes": int(result.mapping.compulsory_bytes[0]),
        "sram_bytes": sum(actions.sram_read_bytes.values()) + sum(actions.sram_write_bytes.values()),
        "energy_pj": sum(energy.values()), "energy_breakdown_pj": group_breakdown(energy),
        "latency_s": result.total_cycles / (hw.clock_ghz * 1e9),
        "energy_table": table.path,
    }


def run(args: argparse.Namespace) -> int:
    report = gemm_report(args)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"GEMM {args.m}x{args.n}x{args.k} ({args.mode}) on {report['rows']}x{report['cols']} "
                    f"{report['dataflow'].upper()}", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for key in ("compute_cycles", "total_cycles", "stall_cycles", "folds", "macs", "utilization", "dram_bytes",
                "compulsory_dram_bytes", "sram_bytes", "energy_pj", "latency_s"):
        v = report[key]
        t.add_row(key, f"{v:.4g}" if isinstance(v, float) else f"{v:,}")
    for cause, v in report["stall_cycles_by_cause"].items():
        if v:
            t.add_row(f"  stall: {cause}", f"{v:,}")
    for part, pj in report["energy_breakdown_pj"].items():
        t.add_row(f"  energy: {part} (pJ)", f"{pj:.4g}")
    Console(markup=False).print(t)
    return 0

