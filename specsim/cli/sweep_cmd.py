"""``specsim sweep``: a design-space sweep of a run config, written as a tidy table (CSV and Parquet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specsim.cli.args import integer
from specsim.errors import SpecsimError


def split_values(text: str) -> list[str]:
    """``v1,v2,[a, b]`` -> ``["v1", "v2", "[a, b]"]``: commas inside brackets, braces or quotes stay.

    A quote opens a quoted value only at the start of a value (so ``it's`` is plain text)."""
    items, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"" and not cur.strip():
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        cur += ch
    if quote or depth:
        raise SpecsimError(f"--set {text!r}: unbalanced brackets or quotes")
    items.append(cur)
    return items


def parse_axes(assignments: list[str]) -> dict[str, list]:
    """``--set key=v1,v2`` options -> ``{key: [v1, v2]}`` (values parsed as YAML)."""
    from specsim.typedconfig import parse_value

    axes: dict[str, list] = {}
    for a in assignments:
        if "=" not in a or not a.split("=", 1)[0].strip():
            raise SpecsimError(f"--set {a!r}: expected key=value1,value2,... (e.g. hardware.array.rows=16,32,64)")
        key, text = (x.strip() for x in a.split("=", 1))
        if key in axes:
            raise SpecsimError(f"--set {key}: given twice; list all its values in one --set")
        values = split_values(text)
        if not text or any(not v.strip() for v in values):
            raise SpecsimError(f"--set {a!r}: empty value in the list (expected key=value1,value2,...)")
        axes[key] = [parse_value(v) for v in values]
    return axes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="sweep design points of a run config (PE array, gamma, bandwidth, ...) into a table",
        description="Run a run config at every point of a grid (each --set key=v1,v2,... is one axis; the grid "
        "is their product) or of an explicit point list (--points), in parallel on local processes "
        "or a Dask cluster. Writes DIR/results.csv and DIR/results.parquet: one row per point x "
        "workload x accelerator with the swept values and every report metric. Resumable: "
        "re-running the same command skips the points already in DIR/points.jsonl; failed points "
        "are recorded in DIR/failures.csv and the sweep goes on. Exit code: 0 when every point "
        "ran, 1 when some failed (the tables hold the others), 2 on bad input.",
        epilog="example: specsim sweep hwconfigs/speq.yaml --set hardware.array.rows=16,32,64,128 "
        "--set hardware.array.cols=16,32,64,128 --out results/pe_sweep",
    )
    p.add_argument("config", help="run config YAML, e.g. hwconfigs/speq.yaml")
    p.add_argument(
        "--set",
        dest="axes",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="one grid axis: a run-config key and its values (YAML; commas inside [] stay)",
    )
    p.add_argument(
        "--points",
        default=None,
        metavar="FILE",
        help="explicit design points: a YAML list of {key: value} mappings (instead of a grid)",
    )
    p.add_argument(
        "--workers", type=integer("workers"), default=None, help="local worker processes, 1..64 (default: all cores)"
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the points on a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786",
    )
    p.add_argument("--out", required=True, help="results folder (created; an existing sweep there is resumed)")
    p.add_argument("--retry-failed", action="store_true", help="run failed points again on resume")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _points(path: str) -> list[dict]:
    from specsim.typedconfig import load_yaml_document

    data = load_yaml_document(Path(path))
    if not isinstance(data, list) or not data or not all(isinstance(p, dict) for p in data):
        raise SpecsimError(f"{path}: expected a non-empty YAML list of mappings (one design point each)")
    return data


def run(args: argparse.Namespace) -> int:
    from specsim.results.sweep import CSV, FAILURES, PARQUET, parquet_available, sweep

    if args.points and args.axes:
        raise SpecsimError("--points and --set: give a grid (--set) or a point list (--points), not both")
    if not args.points and not args.axes:
        raise SpecsimError("nothing to sweep: give at least one --set key=v1,v2,... or --points FILE")
    space = _points(args.points) if args.points else parse_axes(args.axes)
    out = Path(args.out)
    frame = sweep(
        args.config,
        space,
        workers=args.workers,
        scheduler=args.scheduler,
        out=out,
        progress=not args.no_progress and sys.stderr.isatty(),
        retry_failed=args.retry_failed,
    )
    summary = frame.attrs["summary"]
    print(summary.line())
    if parquet_available():
        print(f"wrote {out / CSV} and {out / PARQUET} ({len(frame)} rows)")
    else:
        print(f'wrote {out / CSV} ({len(frame)} rows; no {PARQUET}: pip install -e ".[parquet]" adds pyarrow)')
    if summary.failures:
        first = summary.failures[0]
        print(f"failures in {out / FAILURES}; first: point {first['point']}: {first['error']}")
        return 1
    return 0
