"""``specsim run``: the main job: SPEQ's draft/verify decoding against its baselines, from a run config."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="simulate a run config (accelerator, workloads, baselines) and report speedups",
        description="Replay every workload of a run config (hwconfigs/*.yaml) on its accelerator and its "
        "baselines: prefill and per-token latency, tokens/s, energy per token with breakdown, "
        "roofline efficiency, speedups and energy efficiency (geometric mean over workloads) "
        "and Leviathan's theoretical speedup beside the simulated one. Writes report.json and "
        "report.csv.",
    )
    p.add_argument("config", help="run config YAML, e.g. hwconfigs/speq.yaml")
    p.add_argument(
        "--out",
        default=None,
        help="results folder (default: results/<config name>/); an existing "
        "one is replaced only when specsim made it from the same config and --set values",
    )
    p.add_argument(
        "--replace", action="store_true", help="replace a results folder specsim made from another configuration"
    )
    p.add_argument("--json", action="store_true", help="print the report object as JSON on stdout")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set hardware.array.rows=128 --set decoding.gamma=8",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--wide",
        action="store_true",
        help="one table per workload with every column (about 190 columns wide) instead of a time and "
        "energy table and a speedup table that fit 100 columns",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specsim.allocator import tune_for_large_arrays
    from specsim.outputs import check_run_folder, run_signature
    from specsim.results.config import load_run_config
    from specsim.results.report import print_report
    from specsim.results.run import results_folder, write_report
    from specsim.results.run import run as run_config

    cfg = load_run_config(args.config, args.overrides)
    signature = run_signature(args.config, args.overrides)
    out = check_run_folder(
        Path(args.out) if args.out else Path("results") / cfg.name,
        "--out" if args.out else "results folder",
        signature,
        args.replace,
    )
    tune_for_large_arrays()
    with results_folder(out, signature) as tmp:  # written whole, or not at all
        report = run_config(
            cfg, progress=not args.no_progress and not args.json and sys.stderr.isatty(), overrides=args.overrides
        )
        write_report(report, tmp)
        text = json.dumps(report, indent=1) if args.json else None
        if not args.json:
            print_report(report, wide=args.wide)
    print(text if args.json else f"wrote {out / 'report.json'} and {out / 'report.csv'}")
    return 0
