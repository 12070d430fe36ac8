"""Design-space sweeps: many design points of one run config, in parallel, resumable, as a tidy table.

A sweep is a run config plus a *space*: a grid (``{"hardware.array.rows": [16, 32], "decoding.gamma":
[2, 4]}``, the Cartesian product) or an explicit list of points (``[{"hardware.array.rows": 16}, ...]``).
Every point is the run config with those keys set (``--set`` semantics, validated against the config
schema for every point before any work starts), run with :func:`specsim.results.run.run`; its report
becomes tidy rows (:func:`specsim.results.report.report_rows`) prefixed with the point's index and values.

Executors: in-process (1 worker), local processes (``workers`` > 1), or a Dask distributed cluster
(``scheduler``: an address or a ``distributed.Client``). Each process keeps a cache of replays, so
points that share an accelerator and workload (a baseline when only the main accelerator's draft
length changes) replay it once; results do not depend on the executor or the order points finish.

With an output folder the sweep is resumable: ``sweep.json`` records the arguments, each finished
point is appended to ``points.jsonl`` as it completes (failed points with their error), and a re-run
with the same arguments skips finished points. The final table (``results.csv``, ``results.parquet``,
and ``failures.csv`` if any point failed) is rebuilt from ``points.jsonl`` in point order.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specsim.allocator import tune_for_large_arrays
from specsim.atomicdir import atomic_file
from specsim.errors import SpecsimError, cut
from specsim.outputs import check_output_folder
from specsim.results.config import load_run_config
from specsim.results.provenance import input_files, sha256_file
from specsim.results.report import ROW_COLUMNS, TEXT_COLUMNS, report_rows
from specsim.results.stats import geometric_mean

SCHEMA_VERSION = 1
MANIFEST, POINTS, CSV, PARQUET, FAILURES = (
    "sweep.json",
    "points.jsonl",
    "results.csv",
    "results.parquet",
    "failures.csv",
)
CONNECT_TIMEOUT_S = 15.0  #: seconds a Dask scheduler has to connect and answer
MAX_POINTS = 20_000  #: design points one sweep may hold
MAX_DISTINCT_VALUES = 1_000  #: distinct (key, value) pairs one sweep may validate (about 20 ms each)
KEY_LABEL = "sweep key"
Point = tuple[tuple[str, Any], ...]  #: one design point: (dotted key, value) pairs in key order


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the run config, fixed ``--set`` overrides, the design points, and every file
    the points read (:func:`specsim.results.provenance.input_files`, the list ``specsim run`` records too)."""

    config: str
    overrides: tuple[str, ...]
    keys: tuple[str, ...]
    points: tuple[Point, ...]
    inputs: tuple[str, ...] = ()

    def manifest(self) -> dict:
        """What a results folder must match to be resumed: the arguments and the content of every input."""
        from specsim._version import __version__

        return {
            "schema": SCHEMA_VERSION,
            "specsim": __version__,
            "config": self.config,
            "overrides": list(self.overrides),
            "keys": list(self.keys),
            "points": [[[k, v] for k, v in p] for p in self.points],
            "inputs": {f: sha256_file(f) for f in sorted({self.config, *self.inputs})},
        }


@dataclass
class SweepSummary:
    """What a sweep did: points in total, run now, skipped (already in the folder), failed."""

    points: int
    ran: int = 0
    skipped: int = 0
    failures: list[dict] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.points} points: {self.ran} run, {self.skipped} already done, {len(self.failures)} failed"


def grid(axes: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of ``axes`` (dotted key -> values), first key slowest."""
    for key, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise SpecsimError(f"sweep key {key}: expected a list of values, got {values!r}")
        if len(list(values)) == 0:
            raise SpecsimError(f"sweep key {key}: empty value list")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(list(axes[k]) for k in keys))]


def plan(
    config: str | Path, space: dict[str, Sequence[Any]] | Sequence[dict[str, Any]], overrides: Sequence[str] = ()
) -> SweepPlan:
    """Validate a sweep before anything runs: every key against the config schema, every value (ranges,
    choices, files) on the config as is; repeated points and empty value lists are errors."""
    path = Path(config)
    if not path.exists():
        raise SpecsimError(f"{path}: file not found")
    if isinstance(space, dict):
        points = grid(space)
    elif isinstance(space, Sequence) and all(isinstance(p, dict) for p in space):
        points = [dict(p) for p in space]
    else:
        raise SpecsimError(
            "sweep space: expected a mapping of key -> values (a grid) or a list of mappings (explicit points)"
        )
    if not points:
        raise SpecsimError("sweep space: no design points")
    if len(points) > MAX_POINTS:
        raise SpecsimError(
            f"sweep space: {len(points):,} design points, more than the {MAX_POINTS:,} one sweep may "
            "hold; split it into several sweeps"
        )
    keys: list[str] = []
    canonical_points = []
    for p in points:
        canon: dict[str, Any] = {}
        for k, v in p.items():
            if not isinstance(k, str) or not k.strip():
                raise SpecsimError(f"sweep key {k!r}: expected a dotted config key such as hardware.array.rows")
            ck = _canonical(k)
            if ck in canon:
                raise SpecsimError(f"sweep key {k}: names the same config key as another key of the point ({ck})")
            if ck in ROW_COLUMNS or ck == "point":
                raise SpecsimError(
                    f"sweep key {k}: clashes with the results column {ck!r}; sweep its sub-keys "
                    f"instead (e.g. {ck}.<key>)"
                )
            canon[ck] = v
            if ck not in keys:
                keys.append(ck)
        canonical_points.append(canon)
    points = canonical_points
    normalized = tuple(tuple((k, _plain(p[k])) for k in keys if k in p) for p in points)
    seen: dict[str, int] = {}
    for i, p in enumerate(normalized):
        signature = json.dumps(p, default=str)
        if signature in seen:
            raise SpecsimError(f"sweep point {i} ({_describe(p, 60)}) repeats point {seen[signature]}")
        seen[signature] = i
    # every key and value is checked against the schema (alone, on the config as is); a combination of
    # values that is invalid only together fails its point at run time and is recorded
    values: dict[str, list] = {}
    for p in normalized:
        for k, v in p:
            if all(json.dumps(v, default=str) != json.dumps(u, default=str) for u in values.setdefault(k, [])):
                values[k].append(v)
    distinct = sum(len(v) for v in values.values())
    if distinct > MAX_DISTINCT_VALUES:
        raise SpecsimError(
            f"sweep space: {distinct:,} distinct key values, more than the {MAX_DISTINCT_VALUES:,} one "
            "sweep checks (about 20 ms each); split it into several sweeps"
        )
    baselines: dict = {}  # baseline run configs, loaded once for all values
    inputs = input_files(load_run_config(path, list(overrides)), baselines)
    for key, vals in values.items():
        for v in vals:
            cfg = load_run_config(path, list(overrides), [(key, v)], label=KEY_LABEL)
            try:
                inputs |= input_files(cfg, baselines)
            except SpecsimError:
                pass  # a baseline that cannot be built for this value alone: its points record it
    return SweepPlan(str(path.resolve()), tuple(overrides), tuple(keys), normalized, tuple(sorted(inputs)))


def _canonical(key: str) -> str:
    """One spelling per config key: parts stripped, list indices without leading zeros (``workloads.00`` ->
    ``workloads.0``)."""
    parts = [part.strip() for part in key.split(".")]
    return ".".join(str(int(part)) if part.isascii() and part.isdigit() else part for part in parts)


def _plain(value: Any) -> Any:
    """JSON-ready value (numpy scalars and tuples from notebooks become Python numbers and lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _describe(point: Point, limit: int | None = None) -> str:
    """``key=value, ...`` of a point (each key and value cut to ``limit`` characters for messages)."""

    def short(x: Any) -> str:
        return str(x) if limit is None else cut(str(x), limit)

    return ", ".join(f"{short(k)}={short(v)}" for k, v in point) or "the config as is"


# ---- running points (in any process) ----------------------------------------------------------------

_CACHE: dict = {}
_CACHE_LIMIT = 2048


def run_points(config: str, overrides: tuple[str, ...], points: list[tuple[int, Point]]) -> list[dict]:
    """Run design points; one record per point: ``{"point", "params", "rows"}`` or ``{..., "error"}``.

    Runs in worker processes: errors become records (the sweep goes on), never exceptions.
    """
    tune_for_large_arrays()
    if len(_CACHE) > _CACHE_LIMIT:
        _CACHE.clear()
    out = []
    for index, point in points:
        record: dict[str, Any] = {"point": index, "params": [[k, v] for k, v in point]}
        try:
            from specsim.results.run import run

            cfg = load_run_config(config, list(overrides), list(point), label=KEY_LABEL)
            record["rows"] = report_rows(run(cfg, progress=False, cache=_CACHE, provenance=False))
        except Exception as err:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
            message = str(err).splitlines()[0] if str(err) else ""
            record["error"] = f"{type(err).__name__}: {message}"
        out.append(record)
    return out


def _chunks(todo: list[tuple[int, Point]], workers: int) -> list[list[tuple[int, Point]]]:
    """Small chunks (at most 4 points): few round trips, yet points are written soon after they finish."""
    size = max(1, min(4, len(todo) // (workers * 8)))
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def _run_local(plan_: SweepPlan, todo: list[tuple[int, Point]], workers: int) -> Iterator[list[dict]]:
    if workers <= 1:
        for chunk in _chunks(todo, 1):
            yield run_points(plan_.config, plan_.overrides, chunk)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(run_points, plan_.config, plan_.overrides, c) for c in _chunks(todo, workers)]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            for f in futures:
                f.cancel()


def connect(scheduler: Any):
    """A ``distributed.Client`` for an address (or the client itself); unreachable -> SpecsimError."""
    try:
        from distributed import Client
    except ImportError:
        raise SpecsimError(
            "--scheduler: the Dask executor needs the 'distributed' package (pip install 'dask[distributed]')"
        ) from None
    if isinstance(scheduler, Client):
        return scheduler
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    attempt = pool.submit(Client, str(scheduler), timeout="5s")
    try:
        return attempt.result(timeout=CONNECT_TIMEOUT_S)  # connect and handshake, whatever answers there
    except concurrent.futures.TimeoutError:
        raise SpecsimError(
            f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S:g} s"
        ) from None
    except (OSError, TimeoutError, ValueError, MemoryError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SpecsimError(f"--scheduler {scheduler}: cannot reach a Dask scheduler ({cut(reason, 120)})") from None
    finally:
        pool.shutdown(wait=False)


def _run_dask(plan_: SweepPlan, todo: list[tuple[int, Point]], client, owned: bool) -> Iterator[list[dict]]:
    from distributed import as_completed

    try:
        workers = max(1, sum(client.nthreads().values()))
        futures = [
            client.submit(run_points, plan_.config, plan_.overrides, c, pure=False) for c in _chunks(todo, workers)
        ]
        try:
            for f in as_completed(futures):
                yield f.result()
        finally:
            client.cancel(futures)
    finally:
        if owned:
            client.close()


# ---- the results folder -----------------------------------------------------------------------------


def _valid_record(rec: Any, plan_: SweepPlan) -> bool:
    """A finished point as this sweep writes it: its index, its own parameters, rows or an error."""
    point = rec.get("point") if isinstance(rec, dict) else None
    if not isinstance(point, int) or isinstance(point, bool) or not 0 <= point < len(plan_.points):
        return False
    if rec.get("params") != [[k, v] for k, v in plan_.points[rec["point"]]]:
        return False
    if "error" in rec:
        return isinstance(rec["error"], str) and set(rec) == {"point", "params", "error"}
    rows = rec.get("rows")
    return isinstance(rows, list) and all(
        isinstance(r, dict) and list(r) == list(ROW_COLUMNS) and all(_cell_ok(c, r[c]) for c in ROW_COLUMNS)
        for r in rows
    )


def _cell_ok(column: str, value: Any) -> bool:
    """A table cell of the type its column holds (text, true/false, a finite number) or empty."""
    if value is None:
        return True
    if column in TEXT_COLUMNS:
        return isinstance(value, str)
    if column == "is_main":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= 2**53
    return isinstance(value, float) and math.isfinite(value)


def _read_records(path: Path, plan_: SweepPlan) -> dict[int, dict]:
    """Finished points of ``points.jsonl``; lines that are not a finished point of this sweep (a line torn by
    a kill, an edited or foreign line) are dropped, and never replace a good record."""
    records: dict[int, dict] = {}
    if not path.exists():
        return records
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise SpecsimError(f"{path}: cannot read the finished points ({err.strerror}); use another --out") from None
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if _valid_record(rec, plan_):
            records[rec["point"]] = rec
    return records


def _lock(out: Path):
    """Hold an exclusive lock on ``out`` for this sweep (POSIX); a second sweep on the folder is refused."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    handle = (out / ".lock").open("a")  # never truncates: a lock file holds nothing
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SpecsimError(
            f"{out}: another sweep is writing to this folder; wait for it or use another --out"
        ) from None
    return handle


def _open_folder(plan_: SweepPlan, out: Path, retry_failed: bool):
    """Check or create ``out`` and lock it; returns (the points already finished there, the lock)."""
    manifest = plan_.manifest()
    mpath = out / MANIFEST
    check_output_folder(out, "--out")
    if mpath.exists():
        try:
            old = json.loads(mpath.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            old = None
        if not isinstance(old, dict):
            raise SpecsimError(f"{mpath}: unreadable sweep manifest; use another --out") from None
        if old != manifest:
            what = next((k for k in manifest if old.get(k) != manifest[k]), "schema")
            if what == "inputs":
                changed = sorted(
                    f
                    for f in {*manifest["inputs"], *(old.get("inputs") or {})}
                    if manifest["inputs"].get(f) != (old.get("inputs") or {}).get(f)
                )
                what = f"input file {changed[0]}" + (f" and {len(changed) - 1} more" if len(changed) > 1 else "")
            raise SpecsimError(
                f"{out}: holds a sweep with other arguments ({what} differs); use another --out "
                "or re-run with the same config, inputs and --set values to resume it"
            )
    elif out.exists() and any(p.name != ".lock" or p.stat().st_size for p in out.iterdir()):
        raise SpecsimError(f"{out}: not empty and not a sweep folder; use another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
    except OSError as err:
        raise SpecsimError(f"--out {out}: cannot create or write the results folder ({err.strerror})") from None
    try:
        records = _read_records(out / POINTS, plan_)
        if retry_failed:
            records = {i: r for i, r in records.items() if "error" not in r}
        if not mpath.exists():
            with atomic_file(mpath) as tmp:
                tmp.write_text(json.dumps(manifest, indent=1))
        with atomic_file(out / POINTS) as tmp:  # points.jsonl without dropped lines, before appending
            tmp.write_text("".join(json.dumps(records[i]) + "\n" for i in sorted(records)))
    except OSError as err:
        if lock:
            lock.close()
        raise SpecsimError(f"--out {out}: cannot write the results folder ({err.strerror})") from None
    return records, lock


def table(plan_: SweepPlan, records: dict[int, dict]):
    """The tidy pandas table of all successful points, in point order (``point``, the swept keys, metrics).

    Each value is carried once: a swept key's column holds the point's configured value (what ``--where``
    and the figures select by), a report column each row's own figure. Some of these coincide on a row
    without being the same value (``rows`` is each accelerator's array after the comparison basis, equal
    to ``hardware.array.rows`` under ``same_pe_count`` but not under ``same_area``; ``gamma`` is the
    replayed trace's, empty for autoregressive rows), and a swept key named like a report column is
    refused by :func:`plan`."""
    import pandas as pd

    rows = []
    for i in sorted(records):
        rec = records[i]
        params = {k: v for k, v in rec["params"]}
        for row in rec.get("rows", ()):
            rows.append({"point": i, **{k: params.get(k) for k in plan_.keys}, **row})
    frame = pd.DataFrame(rows, columns=["point", *plan_.keys, *ROW_COLUMNS])
    for key in plan_.keys:  # parquet needs one type per column: mixed values become text
        kinds = {type(v) for v in frame[key] if v is not None}
        if kinds and not (kinds <= {int, float} or kinds == {bool} or kinds == {str}):
            frame[key] = frame[key].map(lambda v: v if v is None else json.dumps(v) if not isinstance(v, str) else v)
    return frame


def parquet_available() -> bool:
    """Whether pyarrow is installed (the ``parquet`` extra): without it a sweep writes results.csv only."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _write_tables(out: Path, frame, failures: list[dict]) -> None:
    with atomic_file(out / CSV) as tmp:
        frame.to_csv(tmp, index=False)
    if parquet_available():
        with atomic_file(out / PARQUET) as tmp:
            frame.to_parquet(tmp, index=False)
    fpath = out / FAILURES
    if failures:
        import csv

        with atomic_file(fpath) as tmp, tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["point", "params", "error"])
            for f in failures:
                w.writerow([f["point"], _describe(tuple(tuple(kv) for kv in f["params"])), f["error"]])
    elif fpath.exists():
        fpath.unlink()


def sweep(
    config: str | Path,
    space: dict[str, Sequence[Any]] | Sequence[dict[str, Any]],
    *,
    workers: int | None = None,
    scheduler: Any = None,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
    retry_failed: bool = False,
):
    """Run a design-space sweep and return its tidy table (a pandas DataFrame).

    ``space``: a grid ``{"hardware.array.rows": [16, 32, 64], "decoding.gamma": [2, 4, 8]}`` or a list of
    points ``[{"hardware.array.rows": 16, "decoding.gamma": 2}, ...]``; keys are run-config keys as for
    ``specsim run --set``. ``workers``: local processes (default: all cores); ``scheduler``: a Dask
    scheduler address or ``distributed.Client`` instead. ``out``: a folder to write ``results.csv``,
    ``results.parquet`` and per-point progress to (resumable). One row per point x workload x
    accelerator; ``frame.attrs["summary"]`` holds the :class:`SweepSummary` (failed points included).
    """
    plan_ = plan(config, space, overrides)
    workers = int(workers) if workers else (os.cpu_count() or 1)
    if workers < 1:
        raise SpecsimError(f"workers: expected at least 1, got {workers}")
    client = connect(scheduler) if scheduler is not None else None  # unreachable: fail before writing
    out_path = Path(out) if out is not None else None
    records, lock = _open_folder(plan_, out_path, retry_failed) if out_path else ({}, None)
    try:
        summary = SweepSummary(points=len(plan_.points), skipped=len(records))
        todo = [(i, p) for i, p in enumerate(plan_.points) if i not in records]
        if todo:
            _run_todo(plan_, todo, records, summary, client, scheduler, workers, out_path, progress)
        summary.failures = [records[i] for i in sorted(records) if "error" in records[i]]
        frame = table(plan_, records)
        if out_path:
            _write_tables(out_path, frame, summary.failures)
    finally:
        if lock:
            lock.close()
    frame.attrs["summary"] = summary
    return frame


def _run_todo(
    plan_: SweepPlan,
    todo,
    records: dict,
    summary: SweepSummary,
    client,
    scheduler,
    workers: int,
    out_path: Path | None,
    progress: bool,
) -> None:
    """Run the unfinished points, appending each record to ``points.jsonl`` as it arrives."""
    batches = (
        _run_dask(plan_, todo, client, owned=client is not scheduler) if client else _run_local(plan_, todo, workers)
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="sweep", unit="point", file=sys.stderr)
    sink = (out_path / POINTS).open("a") if out_path else None
    try:
        for batch in batches:
            for rec in batch:
                records[rec["point"]] = rec
                if sink:
                    sink.write(json.dumps(rec) + "\n")
                    sink.flush()
            summary.ran += len(batch)
            if bar:
                bar.update(len(batch))
    except SpecsimError:
        raise
    except Exception as err:  # noqa: BLE001 - a worker died (BrokenProcessPool, KilledWorker, lost cluster)
        saved = f"; the {len(records)} finished points are in {out_path / POINTS}, re-run to resume" if sink else ""
        raise SpecsimError(
            f"sweep: a worker was lost ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no message'}){saved}"
        ) from None
    finally:
        if sink:
            sink.close()
        if bar:
            bar.close()


def speedup_geomean(frame, by: str = "accelerator", value: str = "speedup_vs_reference") -> dict[str, float]:
    """Geometric mean of ``value`` per ``by`` group (rows with a value only)."""
    out = {}
    for name, group in frame.dropna(subset=[value]).groupby(by, sort=False):
        out[name] = geometric_mean(v for v in group[value] if v > 0)
    return out
