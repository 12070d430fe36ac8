"""Tender (ISCA'24, arXiv 2406.12930): INT4 / INT8 decoding with power-of-two channel groups.

Activations are split into G channel groups whose scales are a power of two apart; the accumulator
shifts once per group boundary, ``(G - 1) x shift_cycles`` per output tile of a quantized GEMM
(``extra_cycles_per_output_tile``), and each quantized GEMM's output is requantized on the vector
unit (a ``requant`` pass). G per (layer, linear) is the trace's measured ``tender_groups`` statistic;
shape workloads, which measure none, use ``default_groups``. Not lossless: drift is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.hardware.lowering import LevelOps
from specsim.methods.base import Method, register
from specsim.typedconfig import spec


@dataclass(frozen=True)
class TenderParams:
    """Tender's accumulator shifts and requantization."""

    shift_cycles: int = spec(
        ge=0,
        le=10**6,
        unit="cycles",
        doc="accumulator shift per channel-group boundary per output tile (Tender "
        "[tender2024]: a one-bit shift between groups)",
    )
    default_groups: int = spec(1, ge=1, le=64, doc="channel groups G where the trace measured none (shape workloads)")
    measured_groups: bool = spec(True, doc="use the trace's measured groups per (layer, linear)")
    requant: bool = spec(True, doc="requantize every quantized GEMM's output on the vector unit")


@register
class Tender(Method):
    name = "tender"
    summary = "Tender channel groups (INT4/INT8): accumulator shifts per output tile, vector-unit requantization"
    kind = "autoregressive"
    target_formats = ("tender",)
    layer_stats = ("tender_groups",)
    Params = TenderParams

    def needs_layer_stats(self, params: TenderParams) -> tuple[str, ...]:
        return self.layer_stats if params.measured_groups else ()

    def lower(self, params: TenderParams, level: LevelOps) -> LevelOps:
        measured = level.layer_stat("tender_groups") if params.measured_groups else {}
        groups = np.array(
            [
                max(1, round(measured.get((int(lay), str(nm)), params.default_groups))) if q else 1
                for lay, nm, q in zip(level.layers, level.linears, level.quantized)
            ],
            dtype=np.int64,
        )
        level = level.add_cycles("extra_cycles_per_output_tile", (groups - 1) * params.shift_cycles)
        return level.with_vector_pass_after(level.quantized, "requant") if params.requant else level
