"""SpecMQuant-style hierarchical decoding: chains of low-bit drafts into a 4-bit-weight (W4A16) target.

Lossless with respect to its quantized target. No extras beyond each level's PE mode.
"""

from __future__ import annotations

from specsim.methods.base import Method, register


@register
class Hierarchical(Method):
    name = "hierarchical"
    summary = "SpecMQuant-style chain of low-bit drafts into a W4A16 target"
    kind = "speculative"
    drafts = ("hierarchical",)
