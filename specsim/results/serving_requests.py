"""Requests of the serving model: Poisson arrivals with sampled lengths, or a request file (numpy only).

Length distribution (when arrivals are Poisson): independent lognormals fitted to the Azure LLM inference
trace 2023, conversation service ([azure-llm-trace-2023]: ``data/AzureLLMInferenceTrace_conv.csv``,
19,366 requests; the trace of [splitwise2024], whose Table 3 gives its medians 1020 prompt and 129 output
tokens). The fit is the mean and standard deviation of the natural log of ``ContextTokens`` and
``GeneratedTokens`` over all rows (computed here from the public file; their log-correlation is 0.09,
so they are drawn independently). Clipping is chosen here: outputs to 1..1000 (the trace's largest),
prompts so that prompt + output fits Llama-2's 4096-token context ([hf-configs]).

A request file is CSV (header ``arrival_s,prompt_tokens,output_tokens``; ``#`` lines are comments) or
JSON Lines (one object per line with those keys): arrival time in seconds, lengths in tokens.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from specsim.errors import SpecsimError, cut, shown

PROMPT_LOG_MU, PROMPT_LOG_SIGMA = 6.6333, 0.9852  #: ln(tokens) of prompts [azure-llm-trace-2023] (fit here)
OUTPUT_LOG_MU, OUTPUT_LOG_SIGMA = 5.0190, 0.8590  #: ln(tokens) of outputs [azure-llm-trace-2023] (fit here)
MAX_OUTPUT = 1000  #: tokens: the trace's largest output [azure-llm-trace-2023]
MAX_CONTEXT = 4096  #: tokens: Llama-2's max_position_embeddings [hf-configs]
MAX_REQUESTS = 1_000_000  #: requests one simulation takes (a guard)
MAX_TOKENS = 1 << 20  #: tokens one request may hold in a file (a guard)
FIELDS = ("arrival_s", "prompt_tokens", "output_tokens")


@dataclass(frozen=True)
class Request:
    """One request: its index (the seed stream of its acceptance draws), arrival in seconds, lengths in tokens."""

    index: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int


def sample_lengths(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (prompt, output) token lengths from the fitted lognormals (see the module docstring)."""
    rng = np.random.default_rng([seed, 1])
    out = np.clip(np.rint(rng.lognormal(OUTPUT_LOG_MU, OUTPUT_LOG_SIGMA, n)), 1, MAX_OUTPUT).astype(np.int64)
    prompt = np.rint(rng.lognormal(PROMPT_LOG_MU, PROMPT_LOG_SIGMA, n)).astype(np.int64)
    return np.clip(prompt, 1, MAX_CONTEXT - out), out


def poisson_requests(rate: float, n: int, seed: int) -> list[Request]:
    """``n`` Poisson arrivals at ``rate`` requests/s (exponential gaps; stream ``[seed, 0]``) with lengths
    from :func:`sample_lengths` (stream ``[seed, 1]``, so every rate serves the same requests)."""
    if not (math.isfinite(rate) and rate > 0):
        raise SpecsimError(f"--rate {rate:g}: expected a positive number of requests per second")
    gaps = np.random.default_rng([seed, 0]).exponential(1.0 / rate, n)
    prompt, out = sample_lengths(n, seed)
    return [Request(i, float(t), int(p), int(o)) for i, (t, p, o) in enumerate(zip(np.cumsum(gaps), prompt, out))]


def read_requests(path: str | Path, limit: int | None = None) -> list[Request]:
    """The requests of a CSV or JSONL file (see the module docstring), sorted by arrival; the first
    ``limit`` rows when given. Any problem is one line naming the file, line and what is expected."""
    p = Path(path)
    if not p.is_file():
        raise SpecsimError(f"--arrivals {path}: file not found (expected a .csv or .jsonl request file)")
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise SpecsimError(f"--arrivals {path}: expected a .csv or .jsonl request file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecsimError(f"--arrivals {path}: unreadable ({type(err).__name__})") from None
    rows = _csv_rows(path, text) if suffix == ".csv" else _jsonl_rows(path, text)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise SpecsimError(f"--arrivals {path}: no requests (expected rows of {', '.join(FIELDS)})")
    rows.sort(key=lambda r: r[1])
    return [Request(i, t, pr, o) for i, (_, t, pr, o) in enumerate(rows)]


def _csv_rows(path, text: str) -> list[tuple[int, float, int, int]]:
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    if not lines:
        raise SpecsimError(f"--arrivals {path}: no header (expected {','.join(FIELDS)})")
    header = [h.strip() for h in next(csv.reader([lines[0][1]]))]
    if header != list(FIELDS):
        raise SpecsimError(
            f"--arrivals {path}: line {lines[0][0]}: header {cut(','.join(header), 80)!r}, expected {','.join(FIELDS)}"
        )
    out = []
    for n, line in lines[1:]:
        cells = next(csv.reader([line]))
        if len(cells) != len(FIELDS):
            raise SpecsimError(f"--arrivals {path}: line {n}: {len(cells)} cells, expected 3 ({','.join(FIELDS)})")
        out.append(_row(path, n, dict(zip(FIELDS, (c.strip() for c in cells)))))
        _check_count(path, len(out))
    return out


def _jsonl_rows(path, text: str) -> list[tuple[int, float, int, int]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise SpecsimError(f"--arrivals {path}: line {n}: not a JSON object") from None
        if not isinstance(obj, dict) or set(obj) != set(FIELDS):
            raise SpecsimError(f"--arrivals {path}: line {n}: expected an object with keys {', '.join(FIELDS)}")
        out.append(_row(path, n, obj))
        _check_count(path, len(out))
    return out


def _check_count(path, count: int) -> None:
    if count > MAX_REQUESTS:
        raise SpecsimError(f"--arrivals {path}: more than {MAX_REQUESTS:,} requests; split the file")


def _row(path, n: int, cells: dict) -> tuple[int, float, int, int]:
    """One validated row: (line, arrival s >= 0, prompt tokens >= 1, output tokens >= 1)."""
    try:
        t = float(cells["arrival_s"])
    except (TypeError, ValueError):
        t = math.nan
    if not (math.isfinite(t) and t >= 0) or isinstance(cells["arrival_s"], bool):
        raise SpecsimError(
            f"--arrivals {path}: line {n}: arrival_s {shown(cells['arrival_s'], 40)}: expected seconds >= 0"
        )
    lengths = []
    for key in FIELDS[1:]:
        v = cells[key]
        ok = isinstance(v, int) and not isinstance(v, bool) or isinstance(v, str) and v.isdigit()
        if not ok or not 1 <= int(v) <= MAX_TOKENS:
            raise SpecsimError(
                f"--arrivals {path}: line {n}: {key} {shown(v, 40)}: expected an integer number of tokens in 1..{MAX_TOKENS}"
            )
        lengths.append(int(v))
    return n, t, lengths[0], lengths[1]
