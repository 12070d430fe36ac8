"""W4A16: weight-only INT4 decoding with group-wise FP16 scales and FP16 activations, autoregressive.

The most deployed quantized decode (GPTQ / AWQ-style weights): every decoder linear is INT4 with one
FP16 scale per group of ``group_size`` input features (``int4_g128`` traces), activations and the KV
cache stay FP16, lm_head stays FP16. On the array the weights stream at 4 bits plus their scales (the
``w4a16`` PE mode: 4.125 bits per weight for groups of 128) and are dequantized by edge dequantizers
as they enter the array, a pipeline whose latency every quantized GEMM pays once (``extra_cycles``).
Not lossless: drift from FP16 is reported from its trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.hardware.lowering import LevelOps
from specsim.methods.base import Method, register
from specsim.typedconfig import spec


@dataclass(frozen=True)
class W4A16Params:
    """The edge dequantizers."""

    dequant_cycles: int = spec(
        ge=0,
        le=10**6,
        unit="cycles",
        doc="pipeline latency of the edge dequantizers (INT4 x group scale -> FP16), once "
        "per quantized GEMM (design choice: no public figure; the same latency as the shipped edge decoders)",
    )


@register
class W4A16(Method):
    name = "w4a16"
    summary = "weight-only INT4 (group-wise FP16 scales), FP16 activations: edge dequantizers per GEMM"
    kind = "autoregressive"
    target_formats = ("int4_g",)
    Params = W4A16Params

    def lower(self, params: W4A16Params, level: LevelOps) -> LevelOps:
        return level.add_cycles("extra_cycles", np.where(level.quantized, params.dequant_cycles, 0))
