"""ML-SpecQD: an MXFP4 draft copy of the weights (or a multi-level chain of drafts), FP16 verification.

The draft is a separate 4.25-bit copy fetched in full by every draft pass; the multi-level variant
drafts the MXFP4 draft with a cheaper view. No extras beyond each level's PE mode.
"""

from __future__ import annotations

from specsim.methods.base import Method, register


@register
class MLSpecQD(Method):
    name = "mlspecqd"
    summary = "ML-SpecQD: MXFP4 draft copy (or a multi-level chain), FP16 verification (lossless)"
    lossless = True
    kind = "speculative"
    drafts = ("mxfp4", "multilevel")
    target_formats = ("fp16",)
