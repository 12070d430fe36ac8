"""Numeric command-line arguments and their documented ranges, in one place.

Every numeric option of every command takes its type from here, so a value outside its range (or
not a number) is refused by the parser itself: one line naming the option and the range, exit code 2,
before anything runs. The ranges bound the work a single command can be asked for; docs/bad-input.md
lists them.
"""

from __future__ import annotations

import argparse
import math

from specsim.trace.tracefile import MAX_DRAFT

INT64_MAX = 2**63 - 1

#: option -> (low, high) for integers; shown in --help and in errors
RANGES: dict[str, tuple[float, float]] = {
    "gamma": (1, MAX_DRAFT),  # draft tokens per round
    "prompts": (1, 100_000),  # --limit: prompts of a prompt set, or shape-trace prompts
    "new_tokens": (1, 16_384),  # --max-new-tokens
    "prompt_len": (1, 131_072),  # --prompt-len, tokens
    "seed": (0, INT64_MAX),
    "gemm_dim": (1, 2**31),  # --m, --n, --k of `specsim gemm`
    "array_dim": (1, 65_536),  # --rows, --cols
    "workers": (1, 64),  # each holds its own replay cache (about 45 MB)
    "layers": (1, 100_000),  # `specsim formats --layers`
}


def integer(name: str):
    """An argparse type: an integer in ``RANGES[name]`` (inclusive)."""
    lo, hi = RANGES[name]

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, got {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, got {text[:40]}")
        return value

    parse.__name__ = f"integer {lo}..{hi}"
    return parse


def number(lo: float, hi: float, low_open: bool = False):
    """An argparse type: a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``low_open``)."""
    shown = f"{'(' if low_open else '['}{lo:g}, {hi:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text[:40]!r}") from None
        if not math.isfinite(value) or value < lo or value > hi or (low_open and value == lo):
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text[:40]}")
        return value

    parse.__name__ = f"number in {shown}"
    return parse


#: what the workload commands (trace, formats) need beyond the light install
WORKLOAD_PACKAGES = ("torch", "transformers", "gguf")


def require_workload_extra(command: str) -> None:
    """One line naming the extra to install when a workload command runs on the light install."""
    import importlib.util

    from specsim.errors import SpecsimError

    missing = [name for name in WORKLOAD_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise SpecsimError(
            f"specsim {command} runs real models and needs {', '.join(missing)}: install the workload "
            'extra, pip install -e ".[workload]" (or pip install "specsim[workload]")'
        )
