"""Memory capacity: the bytes an accelerator keeps resident in DRAM for a workload, against its capacity.

Resident bytes of one workload on one accelerator (numpy only; from the trace and the PE modes):

* **weights**: every weight copy the decoding scheme stores. A chain level's GEMMs store their
  weights at their PE mode's ``weight_bits``; levels whose mode reads the target's words
  (``draft_fetch``, SPEQ's quarter mode) store nothing of their own; levels that run the same mode
  share one copy (an early-exit view of a quantized copy), so each mode counts the largest level's
  bytes. ML-SpecQD's MXFP4 draft is therefore a second copy beside the FP16 target; SPEQ's draft is not;
* **embeddings**: the FP16 input embedding when it is not tied to lm_head (from the architecture);
* **KV cache**: every level keeps its own FP16 K and V (``k_proj``/``v_proj`` outputs) for the most
  context any of its passes holds: summed over the sequences of a batched pass (batches decode one
  after another, so one batch at a time). A layer with a sliding attention window w keeps at most the
  window: ``min(past + tokens, w + tokens - 1)`` entries per sequence in a pass of ``tokens`` new tokens
  (the w - 1 before the first new token and the new ones, as Hugging Face's sliding-window cache holds them);
* **activations**: the largest GEMM's FP16 input and output at the most tokens a pass of that level runs
  (summed over a batched pass's sequences).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from specsim.errors import SpecsimError
from specsim.hardware.config import HardwareConfig
from specsim.hardware.lowering import LevelTemplate
from specsim.hardware.ops import KIND_GEMM
from specsim.trace.operators import window_kv

KV_BYTES = 2  #: FP16 K/V entries
ACTIVATION_BYTES = 2  #: FP16 activations
GIB = 2**30


@dataclass(frozen=True)
class Residency:
    """Bytes resident in DRAM (see the module docstring)."""

    weights: int
    embeddings: int
    kv_cache: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.embeddings + self.kv_cache + self.activations

    def describe(self) -> str:
        parts = ", ".join(
            f"{k.replace('_', ' ')} {getattr(self, k) / GIB:.2f}"
            for k in ("weights", "embeddings", "kv_cache", "activations")
        )
        return f"{self.total / GIB:.2f} GiB ({parts})"


def residency(
    hw: HardwareConfig,
    templates: list[LevelTemplate],
    modes: tuple[str, ...],
    pass_level: np.ndarray,
    pass_tokens: np.ndarray,
    pass_context: np.ndarray,
    embedding_weights: int,
    window_context: Callable[[int], np.ndarray] | None = None,
) -> Residency:
    """Resident bytes of a generation whose level templates are ``templates`` (hardware rows, modes indexing
    ``modes``); per (batched) pass its level, its tokens and its KV entries (cached + new tokens), each
    summed over the pass's sequences; ``embedding_weights``: untied embedding size.

    ``window_context(w)``: per pass, the KV entries a layer with sliding window ``w`` tokens keeps, summed
    over the pass's sequences (:meth:`~specsim.trace.batching.BatchSchedule.pass_window_context`); by
    default ``min(pass_context, w + pass_tokens - 1)``, exact for passes of one sequence."""
    copies: dict[str, int] = {}
    kv = activations = 0
    for level, t in enumerate(templates):
        c = t.columns
        gemm = c["kind"] == KIND_GEMM
        mine = pass_level == level
        if not mine.any():
            continue
        for mode_index in np.unique(c["mode"][gemm]):
            mode = hw.mode(modes[int(mode_index)])
            if mode.draft_fetch:
                continue
            sel = gemm & (c["mode"] == mode_index)
            weight_bytes = int(np.ceil((c["n"][sel] * c["k"][sel] * c["batch"][sel]).sum() * mode.weight_bits / 8))
            copies[modes[int(mode_index)]] = max(copies.get(modes[int(mode_index)], 0), weight_bytes)
        kv_writers = gemm & ~c["output_resident"]  # k_proj / v_proj: their outputs go to the KV cache
        for window in np.unique(c["window"][kv_writers]).tolist():  # full-attention layers: window 0
            if window == 0:
                context = int(pass_context[mine].max())
            elif window_context is not None:
                context = int(window_context(window)[mine].max())
            else:
                context = int(window_kv(pass_context, pass_tokens, window)[mine].max())
            writers = kv_writers & (c["window"] == window)
            kv += int((c["n"][writers] * c["batch"][writers]).sum()) * KV_BYTES * context
        tokens = int(pass_tokens[mine].max())
        widest = int((c["n"][gemm] + c["k"][gemm]).max(initial=0))
        activations = max(activations, tokens * widest * ACTIVATION_BYTES)
    return Residency(
        weights=sum(copies.values()), embeddings=embedding_weights * 2, kv_cache=kv, activations=activations
    )


def check_capacity(where: str, hw: HardwareConfig, resident: Residency) -> None:
    """One-line error when ``resident`` does not fit ``hw``'s DRAM."""
    if resident.total > hw.dram.capacity_bytes:
        per_stack = hw.dram.technology.capacity_gib.value
        given = abs(hw.dram.capacity_gib - hw.dram.stacks * per_stack) > 1e-9 * per_stack  # set, not derived
        stacks = -(-resident.total // int(per_stack * GIB))
        advice = (
            f"give hardware.dram.capacity_gib >= {resident.total / GIB:.1f}"
            if given
            else f"give hardware.dram.stacks >= {stacks} (each {hw.dram.preset} stack adds {per_stack:g} GiB and "
            f"{hw.dram.technology.bandwidth_gbps.value:g} GB/s unless bandwidth_gbps is set)"
        )
        raise SpecsimError(
            f"{where}: needs {resident.describe()} resident in DRAM, but hardware.dram.capacity_gib "
            f"is {hw.dram.capacity_gib:g} GiB ({hw.dram.stacks} x {hw.dram.preset}); {advice}"
        )
