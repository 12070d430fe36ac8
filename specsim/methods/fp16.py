"""FP16 autoregressive decoding: one token per forward pass, every GEMM in its weights' PE mode.

The plain method: no draft, no extras, FP16 weights (lossless). A quantized model decoding alone is
another method (``olive``, ``tender``, ``w4a16``): its output drifts from FP16.
"""

from __future__ import annotations

from specsim.methods.base import Method, register


@register
class FP16(Method):
    name = "fp16"
    summary = "autoregressive decoding, every GEMM in its weights' PE mode (the lossless reference)"
    lossless = True
    kind = "autoregressive"
    target_formats = ("fp16",)
