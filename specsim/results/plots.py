"""Paper-style figures from a results table (a sweep's ``results.parquet``/``.csv`` or a run's ``report.csv``).

Every function takes the tidy table (:data:`specsim.results.report.ROW_COLUMNS`, plus ``point`` and the
swept keys for sweeps) and returns a matplotlib ``Figure`` (no pyplot state, so it works headless and in
notebooks). One style for all: the Okabe-Ito colour-blind-safe palette, one colour per accelerator in
table order, labels with units. Figures made from SHAPE-DERIVED workloads say so in their title.

Kinds (``specsim plot --kind``): ``speedup`` grouped decode-speedup bars per workload with a geomean
group; ``energy`` energy per token by component, normalised to the reference (FP16 by default); ``pe-sweep`` the main
accelerator's speedup over each baseline against PE-array size; ``heatmap`` the main accelerator's
speedup over FP16 across draft length x acceptance rate; ``roofline`` each accelerator's draft,
verify and decode passes under its compute and DRAM roofs; ``batch`` the main accelerator's speedup
over each baseline and every accelerator's throughput against the batch (a sweep over ``decoding.batch``).
"""

from __future__ import annotations

import math
from pathlib import Path

from specsim.atomicdir import atomic_file
from specsim.errors import SpecsimError, shown
from specsim.outputs import check_output_file
from specsim.results.config import DEFAULT_REFERENCE
from specsim.results.report import (
    ALWAYS_FILLED,
    ENERGY_GROUPS,
    REPORT_EXTRA_COLUMNS,
    ROW_COLUMNS,
    STEP_PHASES,
    TEXT_COLUMNS,
)
from specsim.results.stats import geometric_mean

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
}
FORMATS = (".png", ".pdf", ".svg")
SHAPE_NOTE = " [SHAPE-DERIVED workload]"
KINDS: dict = {}  # --kind -> figure function (filled by @figure)


# ---- the table ------------------------------------------------------------------------------------


def load_table(path: str | Path):
    """A results table: a sweep folder or run folder, or a ``.parquet``/``.csv`` file."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        candidates = [path / n for n in ("results.parquet", "results.csv", "report.csv")]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise SpecsimError(
                f"{path}: no results.parquet, results.csv or report.csv (run specsim sweep or "
                "specsim run with --out first)"
            )
        path = found
    if not path.exists():
        raise SpecsimError(f"{path}: file not found")
    if not path.is_file():
        raise SpecsimError(f"{path}: not a regular file (a device or pipe); expected a results table")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad input file
        raise SpecsimError(f"{path}: not a readable results table ({type(err).__name__})") from None
    missing = [c for c in ROW_COLUMNS if c not in frame.columns]
    if missing:
        raise SpecsimError(
            f"{path}: not a results table of this specsim (no column {missing[0]!r}; "
            f"{len(missing)} missing); write it again with specsim run or specsim sweep"
        )
    if len(frame) > MAX_TABLE_ROWS:
        raise SpecsimError(
            f"{path}: {len(frame):,} rows, more than the {MAX_TABLE_ROWS:,} a figure reads; "
            "pick rows with --where or a smaller table"
        )
    frame = _typed(frame, path)
    _check_mains(frame, str(path))
    frame.attrs["path"] = str(path)
    return frame


MAX_TABLE_ROWS = 200_000  #: rows of a results table a figure may read
MAX_CELL = 1e19  #: the largest number a results cell holds (cycle counts stay below 2^62)
MAX_BARS = 400  #: bars (workloads x accelerators) one bar chart may draw


def _check_bars(kind: str, bars: int) -> None:
    if bars > MAX_BARS:
        raise SpecsimError(
            f"--kind {kind}: {bars:,} bars (workloads x accelerators), more than the {MAX_BARS} one "
            "figure draws; pick workloads with --where"
        )


def _truth(v) -> bool | None:
    """A table cell as true/false (True/False, true/false as text), or None."""
    if isinstance(v, bool):
        return v
    return {"True": True, "False": False, "true": True, "false": False}.get(v) if isinstance(v, str) else None


def _typed(frame, path: Path):
    """The table with every results column of its type (text, true/false, a finite number); a cell edited
    into something else, or left empty where every row has a value, is one line naming column and row."""
    import numpy as np
    import pandas as pd

    frame = frame.copy()
    for col in ROW_COLUMNS:
        cells = frame[col]
        blank = cells.isna() | (cells.astype(str).str.strip() == "")
        if col in TEXT_COLUMNS:
            bad = ~blank & ~cells.map(lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool))
            frame[col] = cells.map(lambda v: str(v) if isinstance(v, (str, int, float)) else v).where(~blank, None)
            what = "a name"
        elif col == "is_main":
            truth = cells.map(_truth)
            bad = truth.isna() & ~blank
            frame[col] = truth
            what = "true or false"
        else:
            numbers = pd.to_numeric(
                cells.map(lambda v: v if isinstance(v, (str, int, float)) else None), errors="coerce"
            )
            values = numbers.to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                bad = ~blank & ~(np.isfinite(values) & (values >= 0) & (values <= MAX_CELL))
            frame[col] = numbers
            what = f"a number in [0, {MAX_CELL:g}]"
        if col in ALWAYS_FILLED:
            bad = bad | blank
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            cell = "an empty cell" if blank.iloc[row] else shown(cells.iloc[row], 40)
            raise SpecsimError(f"{path}: column {col!r}, row {row + 1}: {cell} is not {what}")
    return frame


def param_columns(frame) -> list[str]:
    """The swept keys of a sweep table (empty for a run's report)."""
    return [c for c in frame.columns if c not in ROW_COLUMNS and c not in REPORT_EXTRA_COLUMNS and c != "point"]


def varying(frame, exclude: tuple[str, ...] = ()) -> list[str]:
    return [c for c in param_columns(frame) if c not in exclude and frame[c].nunique(dropna=False) > 1]


def where(frame, conditions: list[str]):
    """Rows matching every ``key=value`` (values compared as text, so ``decoding.gamma=4`` matches 4)."""
    for cond in conditions:
        if "=" not in cond:
            raise SpecsimError(f"--where {cond!r}: expected key=value")
        key, value = (x.strip() for x in cond.split("=", 1))
        if key not in frame.columns:
            raise SpecsimError(
                f"--where {key}: no such column (swept keys: {', '.join(param_columns(frame)) or 'none'})"
            )
        frame = frame[[_same(v, value) for v in frame[key]]]
        if frame.empty:
            raise SpecsimError(f"--where {cond}: no rows match")
    if conditions:
        _check_mains(frame, f"--where {' '.join(conditions)}")
    return frame


def _check_mains(frame, where: str) -> None:
    """Every workload of the table has a row of the main accelerator (``is_main``)."""
    mains = frame.groupby("workload")["is_main"].sum()
    if (mains < 1).any():
        raise SpecsimError(
            f"{where}: workload {shown(str(mains.index[(mains < 1).argmax()]), 60)} has no row of the "
            "main accelerator (is_main true)"
        )


def _same(v, text: str) -> bool:
    """Whether table cell ``v`` equals the command-line value ``text`` (read as YAML, as ``--set`` does):
    numbers by value, ``true``/``True`` alike, ``nan`` matches NaN, lists and mappings by content."""
    import json

    from specsim.typedconfig import parse_value

    if str(v) == text:
        return True
    want = parse_value(text)
    if isinstance(v, str) and v[:1] in "[{":
        try:
            v = json.loads(v)  # lists and mappings are stored as JSON text
        except json.JSONDecodeError:
            pass
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()  # numpy scalars
    if isinstance(want, bool) or isinstance(v, bool):
        return isinstance(want, bool) and isinstance(v, bool) and want == v
    if isinstance(want, (int, float)) and isinstance(v, (int, float)):
        try:
            return (math.isnan(v) and math.isnan(want)) or math.isclose(v, want)
        except OverflowError:  # an integer beyond a double: equal only as integers
            return v == want
    if isinstance(want, str) and want.lower() == "nan" and isinstance(v, float):
        return math.isnan(v)
    return v == want


def _one_point(frame, kind: str):
    if "point" in frame.columns and frame["point"].nunique() > 1:
        raise SpecsimError(
            f"--kind {kind} shows one design point; the table holds {frame['point'].nunique()} "
            f"(varying: {', '.join(varying(frame))}); choose one with --where KEY=VALUE"
        )
    return frame


def _colors(names) -> dict[str, str]:
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(names))}


def figure(kind: str):
    """Register a figure function as ``--kind kind``; it runs (and draws) under the shared style and
    refuses an empty table."""
    import functools

    def register(plot):
        @functools.wraps(plot)
        def wrapper(frame, *args, **kwargs):
            import matplotlib as mpl

            if len(frame) == 0:
                where = f" ({frame.attrs['path']})" if frame.attrs.get("path") else ""
                raise SpecsimError(
                    f"--kind {kind}: the table{where} has no rows to plot (did every point fail? see failures.csv)"
                )
            with mpl.rc_context(STYLE):
                return plot(frame, *args, **kwargs)

        KINDS[kind] = wrapper
        return wrapper

    return register


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _point_ids(frame) -> list:
    return list(frame["point"]) if "point" in frame.columns else [0] * len(frame)


def _shape_note(frame) -> str:
    """Names the workloads that are SHAPE-DERIVED (operators from an architecture file, no model run)."""
    shaped = list(dict.fromkeys(frame[frame["source"] == "shape"]["workload"]))
    if not shaped:
        return ""
    return f" [{', '.join(shaped)}: SHAPE-DERIVED]" if len(shaped) < frame["workload"].nunique() else SHAPE_NOTE


def _reference(frame) -> str:
    """The accelerator the table's ratios are normalised to (its ``reference`` column; fp16 for tables
    written before the column existed)."""
    if "reference" in frame.columns and frame["reference"].notna().any():
        return str(frame["reference"].dropna().iloc[0])
    return DEFAULT_REFERENCE


def _main_name(frame) -> str:
    main = frame[frame["is_main"].astype(bool)]["accelerator"]
    return str(main.iloc[0]) if len(main) else "main"


def _finite(v) -> bool:
    """A number that is not None or NaN (table cells of figures that do not apply)."""
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _number(v):
    """A table cell as a float, or None when it is not a number (a trace path, say)."""
    try:
        return float(v) if not isinstance(v, bool) else None
    except (TypeError, ValueError):
        return None


def _geomean(values) -> float:
    """Geometric mean of the finite positive ``values`` (:func:`~specsim.results.stats.geometric_mean`)."""
    return geometric_mean(float(v) for v in values if _finite(v) and v > 0)


# ---- the figures ----------------------------------------------------------------------------------


@figure("speedup")
def speedup_bars(frame):
    """Decode speedup over the table's reference accelerator (``reference`` column, the run config's
    ``reference``) per workload (model) and accelerator, with a geomean group; error bars are each
    speedup's confidence interval where the table has one (the geomean bars have none)."""
    frame = _one_point(frame, "speedup")
    reference = _reference(frame)
    accs = [a for a in dict.fromkeys(frame["accelerator"]) if a != reference]
    workloads = list(dict.fromkeys(frame["workload"]))
    _check_bars("speedup", len(workloads) * len(accs))
    colors = _colors(frame["accelerator"])
    groups = workloads + (["geomean"] if len(workloads) > 1 else [])
    fig, (ax,) = _figure(max(4.5, 1.1 * len(groups) * max(1, len(accs)) / 3 + 2), 3.2)
    width = 0.8 / max(1, len(accs))
    for j, acc in enumerate(accs):
        cells = [
            _cells(
                frame, w, acc, ("speedup_vs_reference", "speedup_vs_reference_ci_low", "speedup_vs_reference_ci_high")
            )
            for w in workloads
        ]
        vals = [c[0] for c in cells]
        if len(workloads) > 1:
            vals.append(_geomean(vals))
            cells.append((vals[-1], float("nan"), float("nan")))
        xs = [i + (j - (len(accs) - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(
            xs,
            vals,
            width,
            label=acc,
            color=colors[acc],
            edgecolor="black",
            linewidth=0.4,
            yerr=_error_bars(cells),
            error_kw={"elinewidth": 0.6, "capsize": 1.5},
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(groups)), [g if g == "geomean" else _workload_label(frame, g) for g in groups])
    ax.set_ylabel(f"decode speedup over {reference} (x)")
    ax.set_title(f"Decode speedup per token, normalised to {reference}{_shape_note(frame)}")
    ax.legend(ncols=min(len(accs), 6), loc="upper left", frameon=False)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)
    return fig


def _cells(frame, workload: str, acc: str, columns: tuple[str, ...]) -> tuple[float, ...]:
    """One row's numbers (NaN where missing or not a number)."""
    row = frame[(frame.workload == workload) & (frame.accelerator == acc)]
    return tuple((_number(row[c].iloc[0]) if len(row) and c in row else None) or float("nan") for c in columns)


def _error_bars(cells) -> list[list[float]]:
    """Matplotlib's asymmetric yerr from (value, low, high) triples; no bar where the interval is missing."""
    low = [v - lo if _finite(lo) and _finite(v) else 0.0 for v, lo, _ in cells]
    high = [hi - v if _finite(hi) and _finite(v) else 0.0 for v, _, hi in cells]
    return [low, high]


def _workload_label(frame, workload: str) -> str:
    src = frame[frame.workload == workload]["source"].iloc[0]
    return f"{workload}\n(shape)" if src == "shape" else workload


@figure("energy")
def energy_breakdown(frame):
    """Energy per generated token by component (DRAM, SRAM, PE array, vector unit, static), as stacked
    bars normalised to the table's reference accelerator's total for the same workload."""
    frame = _one_point(frame, "energy")
    reference = _reference(frame)
    workloads = list(dict.fromkeys(frame["workload"]))
    accs = list(dict.fromkeys(frame["accelerator"]))
    _check_bars("energy", len(workloads) * len(accs))
    fig, (ax,) = _figure(max(5.0, 0.45 * len(workloads) * len(accs) + 1.5), 3.4)
    colors = dict(zip(ENERGY_GROUPS, PALETTE))
    x, labels, centers = 0.0, [], []
    for w in workloads:
        sub = frame[frame.workload == w]
        ref = sub[sub.accelerator == reference]
        if ref.empty:
            raise SpecsimError(f"--kind energy: workload {w!r} has no {reference!r} accelerator to normalise to")
        total = float(ref["energy_j_per_token"].iloc[0])
        if not total > 0:
            raise SpecsimError(
                f"--kind energy: workload {shown(w, 60)}: {reference}'s energy per token is {total:g}; "
                "expected a positive number to normalise to"
            )
        start = x
        for acc in accs:
            row = sub[sub.accelerator == acc]
            if row.empty:
                continue
            bottom = 0.0
            for g in ENERGY_GROUPS:
                v = float(row[f"energy_{g}_j"].iloc[0]) / total
                ax.bar(
                    x,
                    v,
                    0.8,
                    bottom=bottom,
                    color=colors[g],
                    edgecolor="black",
                    linewidth=0.3,
                    label=g.replace("_", " ") if x == 0 else None,
                )
                bottom += v
            labels.append((x, acc))
            x += 1
        centers.append(((start + x - 1) / 2, w))
        x += 0.6
    ax.set_xticks([p for p, _ in labels], [a for _, a in labels], rotation=45, ha="right")
    for cx, w in centers:
        ax.annotate(
            _workload_label(frame, w).replace("\n", " "),
            (cx, 1.0),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel(f"energy per token / {reference}'s")
    ax.set_title(f"Energy breakdown per generated token{_shape_note(frame)}", pad=14)
    ax.legend(ncols=len(ENERGY_GROUPS), loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
    return fig


@figure("pe-sweep")
def speedup_vs_pes(frame):
    """The main accelerator's decode speedup over each baseline against its PE count (rows x cols)."""
    others = varying(frame, exclude=("hardware.array.rows", "hardware.array.cols"))
    if others:
        raise SpecsimError(
            f"--kind pe-sweep: the table also varies {', '.join(others)}; choose values with --where KEY=VALUE"
        )
    main_name = _main_name(frame)
    workloads = list(dict.fromkeys(frame["workload"]))
    fig, axes = _figure(3.4 * len(workloads) + 0.6, 3.2, ncols=len(workloads))
    colors = _colors(frame["accelerator"])
    is_main = frame.is_main.astype(bool)
    main = frame[is_main]
    shape_of = {(p, w): (int(r), int(c)) for p, w, r, c in zip(_point_ids(main), main.workload, main.rows, main.cols)}
    sizes = sorted(set(shape_of.values()), key=lambda rc: (rc[0] * rc[1], rc))
    for ax, w in zip(axes, workloads):
        sub = frame[(frame.workload == w) & ~is_main]
        for acc, rows in sub.groupby("accelerator", sort=False):
            pts = sorted(
                (sizes.index(shape_of[(p, w)]), v, lo, hi)
                for p, v, lo, hi in zip(
                    _point_ids(rows),
                    rows["main_speedup_over"],
                    rows["main_speedup_over_ci_low"],
                    rows["main_speedup_over_ci_high"],
                )
            )
            ax.errorbar(
                [a for a, *_ in pts],
                [b for _, b, *_ in pts],
                yerr=_error_bars([p[1:] for p in pts]),
                marker="o",
                color=colors[acc],
                label=f"over {acc}",
                elinewidth=0.6,
                capsize=2,
            )
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(sizes)), [f"{r}x{c}" for r, c in sizes], rotation=45 if len(sizes) > 6 else 0)
        ax.set_xlabel(f"{main_name} PE array (rows x cols), by PE count")
        ax.set_ylabel(f"{main_name} decode speedup (x)")
        ax.set_title(_workload_label(frame, w).replace("\n", " "))
    axes[-1].legend(frameon=False, fontsize=7)
    fig.suptitle(f"{main_name} speedup vs PE-array size{_shape_note(frame)}")
    return fig


@figure("batch")
def batch_curves(frame):
    """Against the batch (sequences decoded together): the main accelerator's decode speedup over each
    baseline at equal batch (with its confidence interval) and every accelerator's throughput, one panel
    pair per workload. Reads the ``batch`` column (a sweep over ``decoding.batch``)."""
    others = varying(frame, exclude=("decoding.batch",))
    if others:
        raise SpecsimError(f"--kind batch: the table also varies {', '.join(others)}; choose values with --where")
    batches = sorted({int(b) for b in frame["batch"]}) if "batch" in frame else []
    if len(batches) < 2:
        raise SpecsimError(
            "--kind batch: needs results at two batches or more, e.g. specsim sweep CONFIG "
            "--set decoding.batch=1,2,4,8,16 --out DIR"
        )
    main_name = _main_name(frame)
    workloads = list(dict.fromkeys(frame["workload"]))
    fig, axes = _figure(6.4, 2.9 * len(workloads), ncols=2 * len(workloads))
    colors = _colors(frame["accelerator"])
    is_main = frame.is_main.astype(bool)
    for i, w in enumerate(workloads):
        speed_ax, tput_ax = axes[2 * i], axes[2 * i + 1]
        sub = frame[frame.workload == w]
        for acc, rows in sub[~is_main[sub.index]].groupby("accelerator", sort=False):
            rows = rows.sort_values("batch")
            cells = list(
                zip(rows["main_speedup_over"], rows["main_speedup_over_ci_low"], rows["main_speedup_over_ci_high"])
            )
            speed_ax.errorbar(
                rows["batch"], [c[0] for c in cells], yerr=_error_bars(cells), marker="o", color=colors[acc],
                label=f"over {acc}", elinewidth=0.6, capsize=2,
            )  # fmt: skip
        for acc, rows in sub.groupby("accelerator", sort=False):
            rows = rows.sort_values("batch")
            tput_ax.plot(rows["batch"], rows["tokens_per_s"], marker="o", color=colors[acc], label=acc)
        speed_ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        speed_ax.set_ylabel(f"{main_name} decode speedup (x)")
        tput_ax.set_ylabel("throughput (tokens/s, all sequences)")
        for ax in (speed_ax, tput_ax):
            ax.set_xscale("log", base=2)
            ax.set_xticks(batches, [str(b) for b in batches])
            ax.set_xlabel("batch (sequences decoded together)")
            ax.set_title(_workload_label(frame, w).replace("\n", " "), fontsize=8)
    axes[0].legend(frameon=False, fontsize=7, loc="best")
    axes[1].legend(frameon=False, fontsize=7, loc="best")
    fig.suptitle(f"{main_name} against batch size, equal batch for every accelerator{_shape_note(frame)}")
    return fig


@figure("heatmap")
def gamma_alpha_heatmap(frame, x: str | None = None, y: str | None = None, workload: str | None = None):
    """The main accelerator's decode speedup over FP16 across two swept keys (default: the draft length
    ``decoding.gamma``, or else the batch ``decoding.batch``, and a swept acceptance rate
    ``...shape.acceptance.<accelerator>``)."""
    params = param_columns(frame)
    x = (
        x
        or next((c for c in params if c.endswith("gamma")), None)
        or next((c for c in params if c.endswith("batch")), None)
    )
    y = y or next((c for c in params if ".acceptance." in c), None)
    if x is None or y is None or x not in frame or y not in frame:
        raise SpecsimError(
            "--kind heatmap: needs a sweep over the draft length (or the batch) and the acceptance rate, e.g. "
            "--set decoding.gamma=1,2,4,8 --set workloads.0.shape.acceptance.speq=0.5,0.7,0.9 "
            f"(swept keys here: {', '.join(params) or 'none'})"
        )
    others = varying(frame, exclude=(x, y))
    if others:
        raise SpecsimError(f"--kind heatmap: the table also varies {', '.join(others)}; choose values with --where")
    main_rows = frame[frame.is_main.astype(bool)]
    workload = workload or str(
        main_rows[main_rows.source == "shape"]["workload"].iloc[0]
        if (main_rows.source == "shape").any()
        else main_rows["workload"].iloc[0]
    )
    main_rows = main_rows[main_rows.workload == workload]
    for key in (x, y):
        bad = [v for v in main_rows[key].unique() if not _finite(_number(v))]
        if bad:
            raise SpecsimError(
                f"--kind heatmap: axis {key} needs numbers, the table has {bad[0]!r}; choose the "
                f"numeric values with --where or sweep numbers only"
            )
    main_rows = main_rows.assign(**{x: main_rows[x].map(_number), y: main_rows[y].map(_number)})
    xs = sorted(main_rows[x].unique())
    ys = sorted(main_rows[y].unique())
    if len(xs) > MAX_BARS or len(ys) > MAX_BARS:
        raise SpecsimError(
            f"--kind heatmap: {len(xs)} x {len(ys)} values, more than the {MAX_BARS} per axis one "
            "figure draws; pick values with --where"
        )
    grid = [[float("nan")] * len(xs) for _ in ys]
    for _, r in main_rows.iterrows():
        grid[ys.index(r[y])][xs.index(r[x])] = float(r["speedup_vs_reference"])
    fig, (ax,) = _figure(0.55 * len(xs) + 2.6, 0.32 * len(ys) + 1.6)
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    data = np.array(grid)
    finite = data[np.isfinite(data)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.5, 1.5)
    norm = TwoSlopeNorm(vcenter=1.0, vmin=min(lo, 0.99), vmax=max(hi, 1.01))
    im = ax.imshow(data, origin="lower", aspect="auto", cmap="PuOr", norm=norm)
    ax.grid(False)
    ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
    if len(xs) * len(ys) <= 120:
        for i in range(len(ys)):
            for j in range(len(xs)):
                if np.isfinite(data[i, j]):
                    shade = float(norm(data[i, j]))
                    ax.text(
                        j,
                        i,
                        f"{data[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if shade < 0.15 or shade > 0.85 else "black",
                    )
    ax.set_xlabel(
        "draft length gamma (tokens per round)"
        if x.endswith("gamma")
        else "batch (sequences decoded together)"
        if x.endswith("batch")
        else x
    )
    ax.set_ylabel("acceptance rate alpha" if ".acceptance." in y else y)
    fig.colorbar(im, ax=ax, label=f"decode speedup over {_reference(frame)} (x)")
    ax.set_title(f"{_main_name(frame)} on {workload}{_shape_note(frame[frame.workload == workload])}")
    return fig


@figure("roofline")
def roofline(frame, workload: str | None = None):
    """Each accelerator's mean draft, verify and decode pass under its roofs: attained TFLOP/s against
    operational intensity (FLOP per DRAM byte), with the DRAM-bandwidth slope and the compute ceiling
    of each pass's PE mode."""
    frame = _one_point(frame, "roofline")
    workload = workload or str(frame["workload"].iloc[0])
    sub = frame[frame.workload == workload]
    if sub.empty:
        raise SpecsimError(
            f"--kind roofline: no workload {workload!r} (have: {', '.join(dict.fromkeys(frame.workload))})"
        )
    colors = _colors(frame["accelerator"])
    markers = {"draft": "v", "verify": "s", "decode": "o"}
    fig, (ax,) = _figure(5.6, 3.8)
    import numpy as np

    intensities = []
    order = list(dict.fromkeys(sub["accelerator"]))
    # passes of different accelerators often coincide (speq's verify is ML-SpecQD's FP16 verify): markers
    # shrink along the accelerator order and later ones are drawn on top, so coinciding ones show as rings
    sizes = {a: 40 + 28 * (len(order) - 1 - i) for i, a in enumerate(order)}
    for _, r in sub.iterrows():
        for p in STEP_PHASES:
            macs, nbytes, secs = r.get(f"{p}_step_macs"), r.get(f"{p}_step_dram_bytes"), r.get(f"{p}_step_seconds")
            if not (_finite(macs) and _finite(nbytes) and _finite(secs)) or not nbytes or not secs:
                continue
            oi = 2 * macs / nbytes
            intensities.append(oi)
            ax.scatter(
                oi,
                2 * macs / secs / 1e12,
                marker=markers[p],
                s=sizes[r.accelerator],
                color=colors[r.accelerator],
                edgecolor="black",
                linewidth=0.5,
                zorder=3 + order.index(r.accelerator),
            )
    if not intensities:
        raise SpecsimError(
            f"--kind roofline: the table has no per-pass figures for {workload!r} (re-run it with "
            "this version of specsim)"
        )
    xs = np.logspace(np.log10(min(intensities) / 8), np.log10(max(intensities) * 64), 200)
    roofs: dict[tuple[float, float], set[str]] = {}
    for _, r in sub.iterrows():
        for p in STEP_PHASES:
            peak = r.get(f"{p}_step_peak_macs_per_s")
            if _finite(peak) and peak:
                roofs.setdefault((round(2 * peak / 1e12, 3), float(r["dram_gbps"])), set()).add(p)
    merged: dict[tuple[float, float], set[str]] = {}  # ceilings within 10% drawn as one (the highest)
    for (peak, gbps), phases in sorted(roofs.items(), reverse=True):
        near = next((k for k in merged if k[1] == gbps and peak >= 0.9 * k[0]), None)
        merged.setdefault(near or (peak, gbps), set()).update(phases)
    for (peak, gbps), phases in sorted(merged.items()):
        ax.plot(
            xs,
            np.minimum(peak, gbps * 1e9 * xs / 1e12),
            color="dimgray",
            linewidth=1.0,
            linestyle=":" if phases == {"draft"} else "-",
            zorder=1,
        )
        ax.annotate(
            f"{peak:.1f} TFLOP/s ({'/'.join(p for p in STEP_PHASES if p in phases)})",
            (xs[-1], peak),
            ha="right",
            va="bottom",
            fontsize=7,
            color="dimgray",
        )
    for gbps in sorted({g for _, g in roofs}):
        x0 = xs[len(xs) // 12]
        ax.annotate(
            f"DRAM {gbps:g} GB/s",
            (x0, gbps * 1e9 * x0 / 1e12),
            rotation=28,
            ha="left",
            va="bottom",
            fontsize=7,
            color="dimgray",
            rotation_mode="anchor",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (FLOP / DRAM byte)")
    ax.set_ylabel("attained throughput (TFLOP/s)")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, linewidth=2, label=a) for a, c in colors.items() if a in set(sub.accelerator)]
    handles += [
        Line2D([], [], marker=m, linestyle="", color="gray", markeredgecolor="black", label=f"{p} pass")
        for p, m in markers.items()
    ]
    ax.legend(handles=handles, frameon=False, fontsize=7, loc="upper left")
    ax.set_title(
        f"Roofline of the mean draft / verify / decode pass: "
        f"{_workload_label(frame, workload).replace(chr(10), ' ')}{_shape_note(sub)}"
    )
    return fig


FIGURE_TAG = "specsim-figure"  #: the creator every figure's metadata names
_METADATA = {".png": {"Software": FIGURE_TAG}, ".pdf": {"Creator": FIGURE_TAG}, ".svg": {"Creator": FIGURE_TAG}}
#: how that metadata appears in each file format (PNG tEXt chunk, PDF info string, SVG RDF creator)
_MARKS = {
    ".png": b"tEXtSoftware\x00" + FIGURE_TAG.encode(),
    ".pdf": b"/Creator (" + FIGURE_TAG.encode() + b")",
    ".svg": b"<dc:title>" + FIGURE_TAG.encode() + b"</dc:title>",
}


def made_by_specsim(path: Path) -> bool:
    """A figure file specsim wrote: its format's metadata record names specsim's figure creator."""
    mark = _MARKS.get(path.suffix.lower())
    if mark is None:
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
            fh.seek(max(0, path.stat().st_size - (1 << 16)))
            tail = fh.read(1 << 16)
    except OSError:
        return False
    return mark in head or mark in tail


def check_figure_path(out: str | Path) -> Path:
    """A figure file name that can be written and, if it exists, is a figure specsim made."""
    return check_output_file(out, "-o", FORMATS, made_by_specsim, "a figure")


def save(fig, out: str | Path) -> Path:
    """Write ``fig`` to ``out`` (.png, .pdf or .svg) atomically; returns the path."""
    out = check_figure_path(out)
    made = [p for p in reversed(out.parents) if not p.exists()]  # folders to create, outermost first
    import matplotlib as mpl

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out, suffix=f".tmp{out.suffix}") as tmp, mpl.rc_context(STYLE):  # the suffix: the format
            fig.savefig(tmp, metadata=_METADATA[out.suffix.lower()])
    except OSError as err:
        for folder in reversed(made):  # leave nothing behind
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise SpecsimError(f"-o {out}: cannot write the figure ({err.strerror or type(err).__name__})") from None
    return out


# ---- serving: throughput-latency curves (``specsim serving --rates ... --out DIR``) ------------------

SERVING_COLUMNS = ("accelerator", "rate_rps", "tokens_per_s", "tpot_p90_s")  #: what --kind serving reads


def load_serving_table(path: str | Path):
    """The table ``specsim serving --out`` writes: its folder (``serving.csv``) or the CSV file."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "serving.csv"
    if not path.is_file():
        raise SpecsimError(f"{path}: not found; --kind serving reads the serving.csv of specsim serving --out")
    try:
        frame = pd.read_csv(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad input file
        raise SpecsimError(f"{path}: not a readable serving table ({type(err).__name__})") from None
    missing = [c for c in SERVING_COLUMNS if c not in frame.columns]
    if missing:
        raise SpecsimError(
            f"{path}: not a specsim serving table (no column {missing[0]!r}); write it with specsim serving --out"
        )
    if len(frame) > MAX_TABLE_ROWS:
        raise SpecsimError(f"{path}: {len(frame):,} rows, more than the {MAX_TABLE_ROWS:,} a figure reads")
    for column in SERVING_COLUMNS[1:]:
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any() and not frame[column].isna().all():
            row = int(np.flatnonzero(values.isna())[0]) + 2
            raise SpecsimError(f"{path}: line {row}: column {column!r} is not a number")
        frame[column] = values
    frame["accelerator"] = frame["accelerator"].astype(str)
    frame.attrs["path"] = str(path)
    return frame


@figure("serving")
def serving_curves(frame):
    """p90 time per output token against output throughput, one curve per accelerator over the arrival
    rates of a ``specsim serving --rates`` table (rates with no finished request are left out)."""
    fig, (ax,) = _figure(5.2, 3.4)
    drawn = 0
    for i, acc in enumerate(dict.fromkeys(frame["accelerator"])):
        sub = frame[(frame["accelerator"] == acc) & frame["tpot_p90_s"].notna()].sort_values("rate_rps")
        if sub.empty:
            continue
        ax.plot(
            sub["tokens_per_s"], sub["tpot_p90_s"] * 1e3, marker="o", ms=3, color=PALETTE[i % len(PALETTE)], label=acc
        )
        drawn += 1
    if not drawn:
        raise SpecsimError(f"--kind serving: {frame.attrs.get('path', 'the table')}: no finished requests to draw")
    ax.set_xlabel("throughput (output tokens/s)")
    ax.set_ylabel("p90 time per output token (ms)")
    ax.set_yscale("log")
    ax.set_title("Serving: latency vs throughput over arrival rates" + SHAPE_NOTE)
    ax.legend(frameon=False)
    return fig
