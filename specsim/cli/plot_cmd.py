"""``specsim plot``: paper-style figures from a sweep or run results table."""

from __future__ import annotations

import argparse

KIND_HELP = {
    "speedup": "grouped decode-speedup bars per workload over the reference (fp16), with a geomean group",
    "energy": "energy per token by component, stacked, normalised to the reference (fp16)",
    "pe-sweep": "main accelerator's speedup over each baseline vs PE-array size",
    "heatmap": "main accelerator's speedup over the reference across gamma (or batch) x acceptance rate",
    "batch": "main accelerator's speedup over each baseline and every throughput vs batch",
    "roofline": "draft / verify / decode passes of each accelerator under its roofs",
    "serving": "p90 time per output token vs throughput per accelerator (specsim serving --rates ... --out)",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="plot a results table (speedup bars, energy breakdown, PE sweep, heatmap, roofline)",
        description="Draw a paper-style figure from RESULTS: a sweep folder (results.parquet/.csv), a run "
        "folder (report.csv) or a table file. Kinds: " + "; ".join(f"{k}: {v}" for k, v in KIND_HELP.items()) + ".",
        epilog="example: specsim plot results/pe_sweep --kind pe-sweep -o pe_sweep.png",
    )
    p.add_argument("results", help="sweep or run results folder, or a .parquet/.csv table")
    p.add_argument("--kind", required=True, choices=tuple(KIND_HELP), help="which figure")
    p.add_argument("-o", "--output", required=True, help="figure file (.png, .pdf or .svg)")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep the rows where a swept key (or any column) has this value; repeatable",
    )
    p.add_argument("--workload", default=None, help="workload for heatmap and roofline (default: the first)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from specsim.results import plots

    plots.check_figure_path(args.output)  # before any work: never a user's file overwritten
    load = plots.load_serving_table if args.kind == "serving" else plots.load_table
    frame = plots.where(load(args.results), args.where)
    if args.workload is not None and args.workload not in set(frame["workload"]):
        from specsim.errors import SpecsimError

        raise SpecsimError(
            f"--workload {args.workload}: not in the table (have: {', '.join(dict.fromkeys(frame['workload']))})"
        )
    kwargs = {"workload": args.workload} if args.kind in ("heatmap", "roofline") else {}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a figure numpy or matplotlib warn about is not drawn
        try:
            fig = plots.KINDS[args.kind](frame, **kwargs)
            fig.canvas.draw()
        except (RuntimeWarning, UserWarning) as warning:
            from specsim.errors import SpecsimError

            raise SpecsimError(f"--kind {args.kind}: the table's values cannot be drawn ({warning})") from None
    print(f"wrote {plots.save(fig, args.output)}")
    return 0
