"""FP16 autoregressive decoding: one token per forward pass, every GEMM in its weights' PE mode.

The plain method: no draft, no extras. It also replays any autoregressive trace whose lowering needs
nothing beyond the PE modes (e.g. a W8A8 INT8 model in an ``int8`` mode).
"""

from __future__ import annotations

from specsim.methods.base import Method, register


@register
class FP16(Method):
    name = "fp16"
    summary = "autoregressive decoding, every GEMM in its weights' PE mode (the lossless reference)"
    lossless = True
    kind = "autoregressive"
