"""Bit-exact number formats: BSFP (SPEQ), MXFP4, OliVe, Tender and plain INT.

:func:`get_format` builds any weight format by its name, as used by ``specsim formats``:

=====================  ==================================================================
``bsfp_full``          all 16 bits of a BSFP word (lossless FP16 reconstruction)
``bsfp_draft_<layout>`` the 4-bit draft view of BSFP (layouts in :data:`bsfp.LAYOUTS`)
``mxfp4``              OCP MXFP4 direct cast (ML-SpecQD's draft)
``olive4``/``olive8``  OliVe outlier-victim pairs
``tender4``/``tender8`` Tender (weights: per-row INT; activations: power-of-two groups)
``int4``/``int8``      symmetric INT per output channel
``int4_g128``          symmetric INT4 per group of 128 input features (W4A16 reference)
``int<b>[_g<n>]``      any symmetric INT of 2..8 bits, per row or per group of n (not in the
                       ``specsim formats`` table; used for cheap draft levels)
=====================  ==================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable

from specsim.errors import SpecsimError
from specsim.workload.formats import bsfp
from specsim.workload.formats.base import EncodedTensor, WeightFormat
from specsim.workload.formats.bsfp import BSFP, BSFPDraft
from specsim.workload.formats.integer import IntFormat
from specsim.workload.formats.mxfp4 import MXFP4
from specsim.workload.formats.olive import OliVe
from specsim.workload.formats.tender import TenderWeights

_FACTORIES: dict[str, Callable[[], WeightFormat]] = {
    "bsfp_full": lambda: BSFP(bsfp.DEFAULT_LAYOUT),
    **{f"bsfp_draft_{name}": (lambda n=name: BSFPDraft(n)) for name in bsfp.LAYOUTS},
    "mxfp4": MXFP4,
    "olive4": lambda: OliVe(4),
    "olive8": lambda: OliVe(8),
    "tender4": lambda: TenderWeights(4),
    "tender8": lambda: TenderWeights(8),
    "int4": lambda: IntFormat(4),
    "int4_g128": lambda: IntFormat(4, 128),
    "int8": lambda: IntFormat(8),
}

FORMAT_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def get_format(name: str) -> WeightFormat:
    """Build the weight format called ``name``; unknown names raise :class:`SpecsimError`."""
    if name in _FACTORIES:
        return _FACTORIES[name]()
    match = re.fullmatch(r"int([2-8])(?:_g([1-9][0-9]*))?", name)
    if match and int(match[1]) != 7:
        return IntFormat(int(match[1]), int(match[2]) if match[2] else None)
    raise SpecsimError(f"unknown format '{name}'; expected one of: {', '.join(FORMAT_NAMES)}")


__all__ = ["EncodedTensor", "WeightFormat", "FORMAT_NAMES", "get_format"]
