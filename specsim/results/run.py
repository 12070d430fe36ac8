"""``specsim run``: every workload of a run config on the main accelerator and its baselines."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from specsim.atomicdir import atomic_folder
from specsim.errors import SpecsimError
from specsim.outputs import RUN_MARKER, replaceable_run_folder
from specsim.results.config import Accelerator, RunConfig, WorkloadConfig, accelerators, differences
from specsim.results.decoding import Replay, prepare, replay, shape_trace_for
from specsim.results.provenance import run_provenance
from specsim.results.report import HardwareSummary, build_report, report_csv
from specsim.results.serving_costs import AUTO_GAMMAS
from specsim.trace.tracefile import Trace, read_trace
from specsim.typedconfig import file_key


def _reader(cache: dict):
    """read_trace, memoized in ``cache`` by file, modification time and size (:func:`file_key`)."""

    def read(path) -> Trace:
        key = ("trace", *file_key(path))
        if key[-1] is None:
            return read_trace(path)  # unreadable: its one-line error
        if key not in cache:
            cache[key] = read_trace(path)
        return cache[key]

    return read


def _trace(acc: Accelerator, w: WorkloadConfig, cfg: RunConfig, read) -> Trace:
    if w.shape is not None:
        return shape_trace_for(acc, w.shape, cfg.path, read, workload=w.name)
    role = acc.config.trace_role
    if role not in w.traces:
        raise SpecsimError(
            f"{cfg.path}: workloads: {w.name!r} has no trace for accelerator {acc.name!r} "
            f"(traces.{role}; it has: {', '.join(w.traces)})"
        )
    return read(cfg.resolve(w.traces[role]))


def _check_same_workload(cfg: RunConfig, w: WorkloadConfig, traces: dict[str, Trace]) -> None:
    """All traces of one workload must come from the same model and prompts."""
    first_name, first = next(iter(traces.items()))
    for name, t in traces.items():
        for key in ("model", "prompts_sha256"):
            if t.header.get(key) != first.header.get(key):
                raise SpecsimError(
                    f"{cfg.path}: workloads: {w.name!r}: trace {t.path} ({name}) has {key} "
                    f"{t.header.get(key)!r}, trace {first.path} ({first_name}) has "
                    f"{first.header.get(key)!r}"
                )


def _replay_key(cfg: RunConfig, w: WorkloadConfig, acc: Accelerator) -> str:
    """Everything a replay depends on (trace files are taken as unchanged while a cache lives); of a
    shape workload's acceptance profiles only this accelerator's counts."""
    role = acc.config.trace_role
    if w.shape is not None:
        w = replace(w, shape=replace(w.shape, acceptance={role: w.shape.acceptance.get(role)}))
    return repr(("replay", cfg.path, w, acc.name, acc.hardware, acc.energy, acc.config.decoding, role, acc.config.path))


def run(
    cfg: RunConfig,
    progress: bool = True,
    cache: dict | None = None,
    overrides: Sequence[str] = (),
    provenance: bool = True,
) -> dict:
    """Simulate every workload on every accelerator; returns the report object.

    ``cache``: a dict kept by the caller across runs (a sweep's design points) that memoizes baseline
    configs and replays, so points that share an accelerator and workload replay it once.
    ``overrides``: the ``--set`` values ``cfg`` was loaded with, recorded as given; ``provenance``: record
    them with the specsim version and every input file's SHA-256 (``report["provenance"]``; a sweep,
    whose manifest records its inputs once, leaves it out).
    """
    accs = accelerators(cfg, cache)
    if not cfg.workloads:
        raise SpecsimError(f"{cfg.path}: workloads: the config lists no workloads")
    cache = {} if cache is None else cache
    read = _reader(cache)
    jobs = [(w, a, _replay_key(cfg, w, a)) for w in cfg.workloads for a in accs]
    roles = {a.config.trace_role for a in accs}
    traces: dict[str, dict[str, Trace]] = {}
    for w in cfg.workloads:  # load and check every input before simulating anything
        unknown = sorted(set(w.traces) - roles)
        if unknown:
            raise SpecsimError(
                f"{cfg.path}: workloads: {w.name!r}: traces.{unknown[0]}: unknown accelerator "
                f"(this config has: {', '.join(sorted(roles))})"
            )
        _check_acceptance_roles(cfg, w, accs)
        todo = [a for wj, a, key in jobs if wj is w and key not in cache]
        if w.shape is None and todo:  # real traces: all of them, to check they share model and prompts
            traces[w.name] = {a.name: _trace(a, w, cfg, read) for a in accs}
            _check_same_workload(cfg, w, traces[w.name])
        else:  # shape-derived: only those not replayed yet
            traces[w.name] = {a.name: _trace(a, w, cfg, read) for a in todo}
    prepared = {
        key: prepare(a, traces[w.name][a.name], w.name)  # every trace checked, every residency
        for w, a, key in jobs
        if key not in cache
    }  # fits, before anything is simulated
    replays: dict[str, dict[str, Replay]] = {w.name: {} for w in cfg.workloads}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="simulating", unit="run", leave=False)
    for w, a, key in jobs:
        if bar:
            bar.set_postfix_str(f"{w.name} on {a.name}")
        if key not in cache:
            cache[key] = replay(a, traces[w.name][a.name], w.name, prepared[key])
        replays[w.name][a.name] = cache[key]
        if bar:
            bar.update()
    if bar:
        bar.close()
    hardware = {a.name: HardwareSummary.of(a) for a in accs}
    diffs = {a.name: d for a in accs[1:] if (d := differences(accs[0], a))}
    beyond: dict[str, list[str]] = {}  # one line per note, naming every accelerator it concerns
    for a in accs:
        for note in a.hardware.dram.beyond_preset():
            beyond.setdefault(note, []).append(a.name)
    notes = [f"{', '.join(names)}: {note}" for note, names in beyond.items()] + _gamma_notes(cfg, accs, read)
    report = build_report(
        cfg.name,
        cfg.path,
        cfg.name,
        " + ".join(cfg.bases),
        hardware,
        replays,
        confidence=cfg.confidence,
        differences=diffs,
        notes=notes,
        reference=cfg.reference,
    )
    if provenance:
        report["provenance"] = run_provenance(cfg, overrides, accs)
    return report


def _check_acceptance_roles(cfg: RunConfig, w: WorkloadConfig, accs: list[Accelerator]) -> None:
    """A shape workload's acceptance profiles belong to its speculative accelerators; any other entry would
    have no effect, so it is refused."""
    if w.shape is None:
        return
    speculative = {a.config.trace_role for a in accs if a.config.decoding.kind == "speculative"}
    for role in w.shape.acceptance:
        if role not in speculative:
            raise SpecsimError(
                f"{cfg.path}: workloads: {w.name!r}: shape.acceptance.{role}: no speculative accelerator "
                f"replays it (speculative here: {', '.join(sorted(speculative)) or 'none'}); an "
                "acceptance profile applies to speculative decoding only"
            )


def _gamma_notes(cfg: RunConfig, accs: list[Accelerator], read) -> list[str]:
    """A trace replays the gamma it was recorded with: where ``decoding.gamma`` differs, say so (it then
    applies to shape workloads only) rather than ignore it silently."""
    notes = []
    for a in accs:
        dec, role = a.config.decoding, a.config.trace_role
        if dec.kind != "speculative":
            continue
        drafted = AUTO_GAMMAS if dec.gamma == "auto" else dec.gamma  # the longest draft a round may take
        for w in cfg.workloads:
            if w.shape is None and role in w.traces:
                recorded = read(cfg.resolve(w.traces[role])).header["gamma"][0]
                if recorded != dec.gamma:
                    notes.append(
                        f"{a.name}: decoding.gamma {dec.gamma} applies to shape workloads only; workload "
                        f"{w.name!r} replays its trace's gamma {recorded}"
                        + ("" if dec.gamma == "auto" else f" (record one with --gamma {dec.gamma})")
                    )
            elif w.shape is not None and isinstance(w.shape.acceptance.get(role), str):
                recorded = read(cfg.resolve(w.shape.acceptance[role])).header["gamma"][0]
                if recorded < drafted:
                    notes.append(
                        f"{a.name}: workload {w.name!r} drafts gamma {dec.gamma} (up to {drafted}) with acceptance "
                        f"from a gamma-{recorded} trace: positions {recorded + 1}-{drafted} take its mean alpha"
                    )
    return notes


@contextmanager
def results_folder(out: Path, signature: dict) -> Iterator[Path]:
    """A temp folder to write results into, created before any work (so an unwritable ``out`` fails
    first); on success it replaces ``out`` (only a folder specsim made, :mod:`specsim.outputs`), on any
    error nothing is left."""
    try:
        with atomic_folder(out, replaceable_run_folder) as tmp:
            (tmp / RUN_MARKER).write_text(json.dumps(signature, indent=1))
            yield tmp
    except OSError as err:
        raise SpecsimError(
            f"--out {out}: cannot write the results folder ({err.strerror or type(err).__name__}); nothing was written"
        ) from None


def write_report(report: dict, folder: Path) -> None:
    """report.json and report.csv into ``folder``."""
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    (folder / "report.csv").write_text(report_csv(report))
