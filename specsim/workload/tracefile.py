"""Trace files: the one interface between the workload side and the hardware side.

A trace is an uncompressed ``.npz`` archive of numpy arrays plus one JSON header (stored as the
``uint8`` array ``__header__``). This module imports only numpy, so hardware configs, the engine,
reports and sweeps can read traces on machines without torch.

Header keys: ``kind`` (``specsim-trace``), ``schema_version``, ``model``, ``draft``, ``gamma``,
``verify``, ``temperature``, ``top_p``, ``seed``, ``max_new_tokens``, ``prompts`` (name),
``prompts_sha256``, ``packages`` (versions), ``payload_sha256`` (SHA-256 over every array's name,
dtype, shape and bytes, in name order) and free-form ``extra``.

Arrays of schema 1 (acceptance events; one row per draft-verify round, rounds of a prompt contiguous):

==================  =======  =============================================================
``round_prompt``    int32    prompt index of each round
``round_drafted``   int16    draft tokens proposed in the round (gamma)
``round_accepted``  int16    draft tokens accepted
``prompt_len``      int32    prompt length in tokens, per prompt
``generated_len``   int32    tokens generated, per prompt
``tokens``          int32    generated tokens of all prompts, concatenated
==================  =======  =============================================================

:func:`read_trace` validates everything and raises :class:`SpecsimError` with one line naming the
file and the problem; :func:`write_trace` writes atomically (no partial file on failure).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specsim.errors import SpecsimError

KIND = "specsim-trace"
SCHEMA_VERSION = 1
HEADER_KEY = "__header__"

#: name -> (dtype, length group); arrays of one group must have equal lengths
SCHEMA: dict[str, tuple[str, str]] = {
    "round_prompt": ("int32", "rounds"),
    "round_drafted": ("int16", "rounds"),
    "round_accepted": ("int16", "rounds"),
    "prompt_len": ("int32", "prompts"),
    "generated_len": ("int32", "prompts"),
    "tokens": ("int32", "tokens"),
}
REQUIRED_HEADER = ("kind", "schema_version", "model", "draft", "gamma", "verify", "payload_sha256")


def payload_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class Trace:
    """A validated trace: header dict and arrays."""

    path: str
    header: dict
    arrays: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def write_trace(path: str | Path, header: dict, arrays: dict[str, np.ndarray]) -> str:
    """Validate and write a trace atomically; returns the payload SHA-256."""
    arrays = {k: np.ascontiguousarray(v, dtype=SCHEMA[k][0]) if k in SCHEMA else np.ascontiguousarray(v)
              for k, v in arrays.items()}
    _check_arrays(str(path), arrays)
    header = {"kind": KIND, "schema_version": SCHEMA_VERSION, **header, "payload_sha256": payload_sha256(arrays)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{HEADER_KEY: blob}, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return header["payload_sha256"]


def _check_arrays(where: str, arrays: dict[str, np.ndarray]) -> None:
    lengths: dict[str, int] = {}
    for name, (dtype, group) in SCHEMA.items():
        if name not in arrays:
            raise SpecsimError(f"{where}: trace array '{name}' is missing")
        a = arrays[name]
        if a.dtype != np.dtype(dtype) or a.ndim != 1:
            raise SpecsimError(f"{where}: trace array '{name}' must be 1-D {dtype}, got {a.ndim}-D {a.dtype}")
        if lengths.setdefault(group, a.size) != a.size:
            raise SpecsimError(f"{where}: trace arrays of group '{group}' differ in length")
    if int(arrays["generated_len"].sum()) != arrays["tokens"].size:
        raise SpecsimError(f"{where}: 'tokens' holds {arrays['tokens'].size} tokens, 'generated_len' sums to "
                           f"{int(arrays['generated_len'].sum())}")
    n_prompts = arrays["prompt_len"].size
    rp = arrays["round_prompt"]
    if rp.size and (rp.min() < 0 or rp.max() >= n_prompts or np.any(np.diff(rp) < 0)):
        raise SpecsimError(f"{where}: 'round_prompt' must index prompts in non-decreasing order")
    acc, dr = arrays["round_accepted"], arrays["round_drafted"]
    if np.any(acc < 0) or np.any(acc > dr):
        raise SpecsimError(f"{where}: 'round_accepted' must lie in [0, round_drafted]")


def read_trace(path: str | Path, kind: str = KIND) -> Trace:
    """Read and validate a trace file; any problem raises a one-line :class:`SpecsimError`."""
    where = str(path)
    if not Path(path).is_file():
        raise SpecsimError(f"{where}: trace file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {name: z[name] for name in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as err:
        raise SpecsimError(f"{where}: not a readable trace (truncated or corrupt .npz: {type(err).__name__})") from None
    blob = data.pop(HEADER_KEY, None)
    if blob is None or blob.dtype != np.uint8:
        raise SpecsimError(f"{where}: no trace header (not a specsim trace)")
    try:
        header = json.loads(blob.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SpecsimError(f"{where}: trace header is not valid JSON") from None
    if not isinstance(header, dict):
        raise SpecsimError(f"{where}: trace header must be a JSON object")
    if header.get("kind") != kind:
        raise SpecsimError(f"{where}: kind '{header.get('kind')}' is not '{kind}'")
    if header.get("schema_version") != SCHEMA_VERSION:
        raise SpecsimError(f"{where}: schema_version {header.get('schema_version')!r} is not supported "
                           f"(this specsim reads version {SCHEMA_VERSION}); regenerate the trace")
    missing = [k for k in REQUIRED_HEADER if k not in header]
    if missing:
        raise SpecsimError(f"{where}: trace header lacks '{missing[0]}'")
    _check_arrays(where, data)
    if payload_sha256(data) != header["payload_sha256"]:
        raise SpecsimError(f"{where}: payload SHA-256 does not match the header (file modified or corrupt)")
    return Trace(where, header, data)


@dataclass(frozen=True)
class AcceptanceSummary:
    """Acceptance statistics of a trace."""

    rounds: int
    tokens_generated: int
    mean_accepted_per_round: float
    mean_tokens_per_round: float  #: accepted + the target's own token
    position_acceptance: list[float]  #: P(draft token i accepted | tokens before it accepted), i = 1..gamma
    alpha: float  #: i.i.d. acceptance-rate estimate (accepted / positions examined)


def summarize(trace: Trace) -> AcceptanceSummary:
    """Per-position acceptance rates and the alpha estimate from a trace's acceptance events."""
    acc = trace["round_accepted"].astype(np.int64)
    drafted = trace["round_drafted"].astype(np.int64)
    gamma = int(drafted.max(initial=0))
    reached = np.array([(acc >= i).sum() for i in range(gamma)], dtype=float)  # rounds examining position i+1
    passed = np.array([(acc >= i + 1).sum() for i in range(gamma)], dtype=float)
    position = np.divide(passed, reached, out=np.zeros(gamma), where=reached > 0)
    examined = np.minimum(acc + 1, drafted).sum()  # positions looked at (stop after the first rejection)
    return AcceptanceSummary(
        rounds=int(acc.size),
        tokens_generated=int(trace["generated_len"].sum()),
        mean_accepted_per_round=float(acc.mean()) if acc.size else 0.0,
        mean_tokens_per_round=float((acc + 1).mean()) if acc.size else 0.0,
        position_acceptance=[float(x) for x in position],
        alpha=float(acc.sum() / examined) if examined else 0.0,
    )
