"""OliVe (ISCA'23, arXiv 2304.07493): outlier-victim-pair W4A4 / W8A8 decoding, autoregressive.

The 8-bit PEs split into 4-bit MACs (the PE mode in the hardware file); the outlier-victim pairs are
decoded on the array edges, a pipeline whose latency every quantized GEMM pays once
(``extra_cycles``). Not lossless: its traces carry the measured drift from FP16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.hardware.lowering import LevelOps
from specsim.methods.base import Method, register
from specsim.typedconfig import spec


@dataclass(frozen=True)
class OliVeParams:
    """OliVe's edge decoders."""

    decoder_cycles: int = spec(
        ge=0,
        le=10**6,
        unit="cycles",
        doc="pipeline latency of the edge decoders, once per quantized GEMM (design "
        "choice: OliVe [olive2023] decodes pairs at the array edge, no cycle figure)",
    )


@register
class OliVe(Method):
    name = "olive"
    summary = "OliVe outlier-victim pairs (W4A4/W8A8): edge-decoder latency per quantized GEMM"
    kind = "autoregressive"
    target_formats = ("olive",)
    Params = OliVeParams

    def lower(self, params: OliVeParams, level: LevelOps) -> LevelOps:
        return level.add_cycles("extra_cycles", np.where(level.quantized, params.decoder_cycles, 0))
