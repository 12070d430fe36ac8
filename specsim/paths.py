"""Paths as a reader sees them: relative to the current folder when a file lies inside it, else absolute.

``hwconfigs/../traces/x.npz`` (a path beside a run config) prints as ``traces/x.npz`` from the project
folder, and as ``/abs/path/traces/x.npz`` from anywhere else; every path specsim prints or records in a
note or provenance goes through :func:`display_path`.
"""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: str | Path) -> str:
    """``path`` resolved (symbolic links and ``..`` followed), relative to the current folder when it lies
    inside it, else absolute; a pseudo path such as ``<built-in>`` or ``shape:...`` is returned as is."""
    text = str(path)
    if not text or text.startswith("<") or text.startswith("shape:"):
        return text
    try:
        resolved = Path(text).resolve()
        here = Path.cwd().resolve()
    except (OSError, RuntimeError, ValueError):
        return text
    if resolved == here or here in resolved.parents:
        return os.path.relpath(resolved, here)
    return str(resolved)


def beside(config_path: str | Path, relative: str | Path) -> Path:
    """A path written in a config file (relative to that file's folder, or absolute), as
    :func:`display_path` shows it."""
    p = Path(relative)
    return Path(display_path(p if p.is_absolute() else Path(config_path).parent / p))
