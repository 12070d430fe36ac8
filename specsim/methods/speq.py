"""SPEQ ("From Quarter to All"): self-speculative decoding on one reconfigurable PE array.

Drafts use the top 4 bits of the target's own FP16 weights (BSFP) in the array's quarter-width mode,
and a verify pass of gamma + 1 tokens runs all 16 bits as FP16 values (the ``bsfp16`` mode of SPEQ's
configs, ``decoding.fp16_mode``: the words plus the per-block layout's metadata); lossless. Its lowering
needs no extras: each pass's cost is its PE mode's (lanes, fetched weight bits), set in the hardware file.
"""

from __future__ import annotations

from specsim.methods.base import Method, register


@register
class SPEQ(Method):
    name = "speq"
    summary = "self-speculative: BSFP top-nibble drafts in quarter mode, FP16 verification (lossless)"
    lossless = True
    kind = "speculative"
    drafts = ("speq",)
    target_formats = ("fp16",)
