"""Output paths: checked before any work starts, and never a file or folder of the user's replaced.

specsim writes three kinds of output, each checked here before a command does anything else:

* **result folders** (``specsim run --out``): written whole into a hidden temp folder beside the
  target and renamed into place (:mod:`specsim.atomicdir`), with a marker file (:data:`RUN_MARKER`)
  naming the configuration that made it. An existing folder is replaced only when its marker says
  specsim made it from the same configuration (``--replace``: from any configuration); an empty
  folder may be filled; any other folder is refused. Sweep folders are specsim's by their
  ``sweep.json`` manifest (:mod:`specsim.results.sweep`);
* **files** (``specsim trace -o``, ``specsim plot -o``): written to a temp file and renamed; an
  existing file is replaced only when specsim made it (a specsim trace, a figure carrying specsim's
  metadata);
* nothing else: every other command writes to the terminal only.

Every refusal is a one-line :class:`~specsim.errors.SpecsimError` naming the option, the path and why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from specsim.errors import SpecsimError, cut

RUN_MARKER = ".specsim-run.json"  #: in every folder `specsim run` writes: {"kind", "config", "overrides"}
RUN_FILES = frozenset({RUN_MARKER, "report.json", "report.csv"})  #: everything a run folder holds


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_parent(path: Path, label: str) -> None:
    """The folder ``path`` goes into exists, or can be created, and is writable."""
    if path.is_symlink():
        raise SpecsimError(f"{label} {path}: is a symbolic link; give the real path")
    anchor = _nearest_existing(path.parent if path.name else path)
    if not anchor.is_dir():
        raise SpecsimError(f"{label} {path}: {anchor} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK) or _read_only(anchor):
        raise SpecsimError(f"{label} {path}: cannot write in {anchor} (permission denied or read-only)")


def _read_only(folder: Path) -> bool:
    """On a read-only file system (where even root cannot write)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _os_errors(check):
    """A path check whose operating-system errors (a name too long, a path through a file) are one line."""

    def checked(path, label, *args, **kwargs):
        try:
            return check(path, label, *args, **kwargs)
        except OSError as err:
            raise SpecsimError(
                f"{label} {cut(str(path), 200)}: unusable path ({err.strerror or type(err).__name__})"
            ) from None

    checked.__doc__, checked.__name__ = check.__doc__, check.__name__
    return checked


@_os_errors
def check_output_file(
    path: str | Path, label: str, suffixes: tuple[str, ...], made_by_specsim: Callable[[Path], bool], what: str
) -> Path:
    """An output file ``path`` (``label``: its option, ``what``: what specsim writes there) that can be
    written, and that, if it exists, specsim made."""
    p = Path(path)
    if not p.stem or p.suffix.lower() not in suffixes:
        raise SpecsimError(f"{label} {path}: expected a file name ending in {' or '.join(suffixes)}")
    _check_parent(p, label)
    if p.exists():
        if p.is_dir():
            raise SpecsimError(f"{label} {path}: is a folder, expected a file name")
        if not made_by_specsim(p):
            raise SpecsimError(
                f"{label} {path}: exists and is not {what} made by specsim; specsim does not "
                "overwrite other files (choose another name or remove it)"
            )
        if not os.access(p, os.W_OK):
            raise SpecsimError(f"{label} {path}: cannot replace it (permission denied)")
    return p


@_os_errors
def check_output_folder(path: str | Path, label: str) -> Path:
    """An output folder that is not a file or a symbolic link and can be created or written; what it may
    hold is its writer's to check (a sweep folder has its manifest)."""
    p = Path(path)
    _check_parent(p, label)
    if p.exists() and not p.is_dir():
        raise SpecsimError(f"{label} {path}: is a file, expected a results folder")
    return p


def run_signature(config: str | Path, overrides: list[str] | tuple[str, ...]) -> dict:
    """What a run folder's marker records: the run config and its ``--set`` overrides."""
    return {"kind": "specsim-run", "config": str(Path(config).resolve()), "overrides": list(overrides)}


def read_marker(folder: Path) -> dict | None:
    """The run marker of ``folder``, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((folder / RUN_MARKER).read_bytes()[: 1 << 20].decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == "specsim-run" else None


def replaceable_run_folder(folder: Path) -> bool:
    """Whether ``folder`` may be replaced by a run's results: empty, or a run folder holding only what
    ``specsim run`` writes."""
    entries = list(folder.iterdir())
    return not entries or (
        read_marker(folder) is not None
        and all(e.name in RUN_FILES and e.is_file() and not e.is_symlink() for e in entries)
    )


@_os_errors
def check_run_folder(path: str | Path, label: str, signature: dict, replace: bool = False) -> Path:
    """A results folder ``specsim run`` may write: new, empty, or made by ``specsim run`` from the same
    configuration (any configuration with ``replace``)."""
    p = Path(path)
    _check_parent(p, label)
    if not p.exists():
        return p
    if not p.is_dir():
        raise SpecsimError(f"{label} {path}: is a file, expected a results folder")
    if not any(p.iterdir()):
        return p
    marker = read_marker(p)
    if marker is None:
        raise SpecsimError(
            f"{label} {path}: is a folder specsim did not make (no {RUN_MARKER}); specsim never "
            "replaces other folders, choose another --out"
        )
    others = sorted(e.name for e in p.iterdir() if e.name not in RUN_FILES or not e.is_file() or e.is_symlink())
    if others:
        raise SpecsimError(
            f"{label} {path}: holds files specsim did not write ({cut(', '.join(others), 120)}); "
            "move them out or choose another --out"
        )
    if not replace and (marker.get("config"), marker.get("overrides")) != (signature["config"], signature["overrides"]):
        was = " ".join([str(marker.get("config")), *(f"--set {o}" for o in marker.get("overrides") or [])])
        raise SpecsimError(
            f"{label} {path}: holds the results of another configuration ({cut(was, 160)}); choose "
            "another --out, or give --replace to replace them"
        )
    if not os.access(p, os.W_OK | os.X_OK):
        raise SpecsimError(f"{label} {path}: cannot replace it (permission denied)")
    return p
