"""Cached results of slow, deterministic computations on a model, in specsim's user cache.

``specsim trace`` spends most of its fixed time on two things that depend only on the model and the
code: the per-layer operand statistics (:mod:`specsim.workload.layer_stats`, ``layer_stats/``) and
weight views of the model in a number format (the SPEQ draft's BSFP view, ``views/``). Both are kept
under :func:`~specsim.workload.models.cache_dir` (``$SPECSIM_CACHE`` or ``~/.cache/specsim``), one
folder per entry, written atomically (:mod:`specsim.atomicdir`).

An entry's key is a SHA-256 over JSON naming everything the result depends on:

* the model's identity: :func:`model_fingerprint`, a SHA-256 over its class, its configuration
  (without the folder it was loaded from) and every parameter and buffer (names, dtypes, shapes,
  bytes), so a model loaded from another folder with the same weights hits, and changed weights miss;
* what is computed: the format of a view, the calibration token ids of the statistics;
* the specsim version and a SHA-256 of the source files that compute the result, the torch and
  numpy versions, and for the statistics the torch thread count (they come from a forward pass,
  whose rounding depends on it).

A cached result is therefore the same bits a fresh computation gives. An unreadable entry is
recomputed and replaced; a cache that cannot be written is reported once and the run goes on
without it. Writing an entry removes all but the :data:`KEEP` newest entries computed for the same
thing by other code or library versions (entries are large: a view of SmolLM2-135M holds 212 MB).
``specsim trace --no-cache`` neither reads nor writes entries.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from specsim.atomicdir import atomic_folder

T = TypeVar("T")
KEY_FILE = "key.json"
KEEP = 3  #: entries kept per computed thing (same key but for the versions in ENVIRONMENT_FIELDS)
ENVIRONMENT_FIELDS = ("specsim", "code", "torch", "numpy", "threads")

#: source files whose code determines cached results (relative to the specsim package)
_CODE_FILES = (
    "workload/layer_stats.py",
    "workload/views.py",
    "workload/quantized.py",
    "workload/models.py",
    "workload/formats/*.py",
    "workload/cache.py",
)
_warned = False


def model_fingerprint(model) -> str:
    """SHA-256 identifying a model: class, configuration (without its source folder) and every tensor's bytes."""
    import torch

    h = hashlib.sha256(type(model).__name__.encode())
    config = model.config.to_dict()
    config.pop("_name_or_path", None)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the specsim version and the source files that compute cached results."""
    from specsim._version import __version__

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for pattern in _CODE_FILES:
        for path in sorted(root.glob(pattern)):
            h.update(f"|{path.relative_to(root)}|".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def environment() -> dict:
    """Versions every cache key names (the code that computes, and the libraries it computes with)."""
    import numpy as np
    import torch

    from specsim._version import __version__

    return {"specsim": __version__, "code": code_fingerprint(), "torch": torch.__version__, "numpy": np.__version__}


def entry_folder(kind: str, key: dict) -> Path:
    """Folder of the cache entry of ``kind`` (``layer_stats``, ``views``) for ``key``."""
    from specsim.workload.models import cache_dir

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return cache_dir() / kind / digest[:32]


def cached(
    kind: str,
    key: dict,
    compute: Callable[[], T],
    save: Callable[[T, Path], None],
    load: Callable[[Path], T],
    enabled: bool = True,
) -> tuple[T, bool]:
    """``compute()``'s result, from the cache when an entry for ``key`` is there; returns it and whether it was.

    ``save(value, folder)`` writes a result into a fresh folder, ``load(folder)`` reads it back (any
    exception: the entry is unusable and is recomputed). With ``enabled=False`` the cache is not used.
    """
    if not enabled:
        return compute(), False
    folder = entry_folder(kind, key)
    value = _load(folder, key, load)
    if value is not None:
        return value, True
    value = compute()
    try:
        with atomic_folder(folder, lambda old: _load(old, key, load) is None) as tmp:
            save(value, tmp)
            (tmp / KEY_FILE).write_text(json.dumps(key, sort_keys=True, indent=1))
    except OSError as err:
        if _load(folder, key, load) is None:  # else another run wrote a valid entry meanwhile: keep it
            _warn(folder, err)
    else:
        _prune(folder, key)
    return value, False


def _prune(folder: Path, key: dict) -> None:
    """Remove all but the KEEP newest entries beside ``folder`` that differ from ``key`` only in versions."""
    import shutil

    def item(k: dict) -> dict:
        return {name: v for name, v in k.items() if name not in ENVIRONMENT_FIELDS}

    same = []
    for other in folder.parent.iterdir():
        try:
            if (
                other != folder
                and not other.name.startswith(".")
                and item(json.loads((other / KEY_FILE).read_text())) == item(key)
            ):
                same.append(((other / KEY_FILE).stat().st_mtime, other))
        except (OSError, ValueError, AttributeError):
            continue  # not an entry, or one being written or removed: leave it
    for _, other in sorted(same, reverse=True)[KEEP - 1 :]:
        shutil.rmtree(other, ignore_errors=True)


def _load(folder: Path, key: dict, load: Callable[[Path], T]) -> T | None:
    try:
        if json.loads((folder / KEY_FILE).read_text()) != key:
            return None
        return load(folder)
    except Exception:  # noqa: BLE001 - a missing, partial or foreign entry is recomputed, whatever is wrong with it
        return None


def _warn(folder: Path, err: OSError) -> None:
    global _warned
    if not _warned:
        _warned = True
        print(
            f"specsim: cannot write the cache entry {folder} ({err.strerror or err}); continuing without it",
            file=sys.stderr,
        )
