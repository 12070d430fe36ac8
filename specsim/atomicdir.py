"""Files and folders that appear whole or not at all: write into a hidden temp file or folder beside the
target, rename it into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_folder(target: Path, replaceable: Callable[[Path], bool] = lambda p: not any(p.iterdir())) -> Iterator[Path]:
    """Yield a temp folder beside ``target``; on success it replaces ``target``, on error it is removed.

    An existing ``target`` is replaced only when ``replaceable(target)`` holds (by default: it is empty),
    checked again at the moment of replacing, so a folder that changed hands meanwhile is never deleted.
    """
    created = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    tmp: Path | None = None
    done = False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        yield tmp
        os.chmod(tmp, 0o755)
        if target.exists():
            if target.is_symlink() or not target.is_dir() or not replaceable(target):
                raise FileExistsError(17, "exists and is not a folder this command may replace", str(target))
            shutil.rmtree(target)
        tmp.rename(target)
        done = True
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not done:  # leave no folder this call created on the way
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:
                    break


@contextmanager
def atomic_file(target: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh hidden temp file name beside ``target`` (``suffix``: its ending, which tells writers
    that infer a format from it); on success it gets the permissions of an ordinary new file (0o666 less
    the umask; mkstemp makes 0o600) and replaces ``target`` in one rename, on any error it is removed.
    ``target``'s folder must exist; checking that ``target`` may be replaced is the caller's job."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)  # a fresh name of specsim's own: never a file of the user's
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
