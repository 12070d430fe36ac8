"""Provenance: the files a run config reads and their SHA-256, for ``report.json``/``report.csv`` and ``sweep.json``.

:func:`input_files` is the one list of inputs: the run config itself, its baselines' run configs, their
hardware files, energy tables (and the file each includes), DRAM presets, and the workloads' files: real
traces, shape workloads' architecture files and acceptance traces. ``specsim run`` records them in its
report (:func:`run_provenance`, paths as :func:`specsim.paths.display_path` shows them); ``specsim sweep``
records the same files, by absolute path, in its manifest to refuse resuming a sweep whose inputs changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from specsim.paths import display_path


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (hex), or ``missing`` when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return "missing"
    return digest.hexdigest()


def input_files(cfg, cache: dict | None = None, accs: Sequence | None = None) -> set[str]:
    """Every file run config ``cfg`` reads, as resolved absolute paths (see the module docstring).
    ``accs``: its accelerators when the caller has them; else built with ``cache`` (as for
    :func:`~specsim.results.config.accelerators`)."""
    from specsim.hardware.config import resolve_shipped
    from specsim.results.config import accelerators
    from specsim.trace.architectures import architecture_path
    from specsim.typedconfig import load_yaml

    files: set[str] = {cfg.path}
    for acc in accs if accs is not None else accelerators(cfg, cache):
        files |= {acc.config.path, acc.hardware.path, acc.energy.path, acc.hardware.dram.technology.path}
        include = load_yaml(acc.energy.path).get("include")
        if isinstance(include, str):
            files.add(str(resolve_shipped("energy", include, Path(acc.energy.path).parent)))
    for w in cfg.workloads:
        files |= {str(cfg.resolve(t)) for t in w.traces.values()}
        if w.shape is not None:
            files.add(str(architecture_path(w.shape.architecture)))
            files |= {str(cfg.resolve(a)) for a in w.shape.acceptance.values() if isinstance(a, str)}
    return {str(Path(f).resolve()) for f in files if f and not f.startswith("<")}


def inputs_digest(inputs: dict[str, str]) -> str:
    """One SHA-256 for a set of inputs: over the JSON text of the sorted [path, sha256] pairs (so a
    reader can recompute it from ``report.json``'s ``provenance.inputs``)."""
    pairs = sorted([path, sha] for path, sha in inputs.items())
    return hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()


def run_provenance(cfg, overrides: Sequence[str] = (), accs: Sequence | None = None) -> dict:
    """``report["provenance"]``: the specsim version, the ``--set`` overrides as given, and the SHA-256
    of every input file (keyed by :func:`~specsim.paths.display_path`) with their digest
    (:func:`inputs_digest`)."""
    from specsim._version import __version__

    inputs = {display_path(f): sha256_file(f) for f in sorted(input_files(cfg, accs=accs))}
    return {
        "specsim_version": __version__,
        "overrides": list(overrides),
        "inputs": inputs,
        "inputs_sha256": inputs_digest(inputs),
    }
