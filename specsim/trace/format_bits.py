"""Metadata bits per weight of a BSFP draft layout, read off its name (no torch, no model).

The hardware side prices a PE mode's weights at the mode's ``weight_bits`` (hardware YAML). For SPEQ's
quarter mode that is the 4-bit top nibble plus the per-weight metadata of the BSFP layout the draft was
encoded with, and for its verify mode (``bsfp16``) the 16-bit word plus the same metadata. A trace names
its draft layout (``bsfp_draft_<layout>``); :func:`bsfp_metadata_bits` gives that layout's metadata so a
run can refuse a mode priced for another layout instead of silently mis-pricing it.

Layout names (:mod:`specsim.workload.formats.bsfp`, where a test checks this against the encoder's own
count): ``<grid>[_row][_max][_x<k>]`` keep one shift per tensor or row (0 bits per weight here; the
8 bits per row are at most 8/K per weight, K the reduction length); ``<grid>_b<B>[s<S>][_t<T>[e]][_max]``
store an ``S``-bit shift (default 8, an E8M0 byte) and a ``log2 T``-bit table selector per block of ``B``
weights: ``(S + log2 T) / B`` bits per weight. Per-tensor level tables, per-row shifts of narrow block
shifts and side-list entries do not scale with the weight count and are not counted.
"""

from __future__ import annotations

import math
import re

#: the plain ``bsfp_draft`` name means this layout (``specsim.workload.formats.bsfp.DEFAULT_LAYOUT``; a
#: test keeps the two equal)
DEFAULT_LAYOUT = "lut8_b32s4_t4e"
#: the named layouts a draft can use (``specsim.workload.formats.bsfp.LAYOUTS``; a test keeps the two equal)
LAYOUT_NAMES = (
    "e3",
    "e2m1",
    "lut8",
    "e3_row",
    "lut8_row",
    "e3_row_max",
    "lut8_row_max",
    "lut8_b32",
    "lut8_b32s4",
    "lut8_b32s4_t4e",
    "lut8_b32s6_t4e",
)
_GRID = r"(?:e3|e2m1|lut8)"
_BLOCK = re.compile(_GRID + r"_b(?P<block>[1-9][0-9]*)(?:s(?P<shift>[1-7]))?(?:_t(?P<tables>[248])e?)?(?:_max)?")
_SCOPE = re.compile(_GRID + r"(?:_row)?(?:_max)?(?:_x[1-9][0-9]*)?")
_DEFAULT_SHIFT_BITS = 8


def bsfp_layout(fmt: str) -> str | None:
    """The layout of a ``bsfp_draft[_<layout>]`` format name; ``None`` for any other format."""
    if fmt == "bsfp_draft":
        return DEFAULT_LAYOUT
    return fmt.removeprefix("bsfp_draft_") if fmt.startswith("bsfp_draft_") else None


def bsfp_metadata_bits(layout: str) -> float | None:
    """Metadata bits per weight of BSFP ``layout`` that scale with the weight count (bits/weight):
    per-block shift and table selector; ``None`` for a name that is no BSFP layout."""
    block = _BLOCK.fullmatch(layout)
    if block:
        shift = int(block["shift"] or _DEFAULT_SHIFT_BITS)
        selector = int(math.log2(int(block["tables"] or 1)))
        return (shift + selector) / int(block["block"])
    return 0.0 if _SCOPE.fullmatch(layout) else None
