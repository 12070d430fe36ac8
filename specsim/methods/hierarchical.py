"""SpecMQuant-style hierarchical decoding: chains of low-bit drafts into a 4-bit-weight target (INT4 weights,
FP16 activations).

Lossless with respect to its quantized target. No extras beyond each level's PE mode.
"""

from __future__ import annotations

from specsim.methods.base import Method, register


@register
class Hierarchical(Method):
    name = "hierarchical"
    summary = "SpecMQuant-style chain of low-bit drafts into a 4-bit-weight (INT4 x FP16) target"
    kind = "speculative"
    drafts = ("hierarchical",)
