"""Accelerator methods as plug-ins (torch-free): one module per method, registered like the formats.

===================  ==============================================================================
``fp16``             autoregressive decoding, every GEMM in its weights' PE mode, no extras
``speq``             SPEQ self-speculative decoding: BSFP top-nibble drafts, FP16 verification
``mlspecqd``         ML-SpecQD: MXFP4 draft copy (or a multi-level chain), FP16 verification
``hierarchical``     SpecMQuant-style chain of low-bit drafts into a W4A16 target
``olive``            OliVe W4A4 / W8A8 outlier-victim pairs: edge-decoder latency per GEMM
``tender``           Tender INT4 / INT8 channel groups: accumulator shifts, vector-unit requantization
``w4a16``            weight-only INT4 (group-wise scales) with FP16 activations: edge dequantizers
===================  ==============================================================================

See :mod:`specsim.methods.base` for the interface. ``specsim methods`` lists them with their parameters.
"""

import importlib
import pkgutil

from specsim.methods.base import Method, NoParams, get_method, method_for, method_names, register

#: every module of this package registers its method on import: adding a method is adding a module
#: (``fp16`` first: the default for plain autoregressive decoding)
for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: (m.name != "fp16", m.name)):
    if _module.name not in ("base", "describe"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Method", "NoParams", "get_method", "method_for", "method_names", "register"]
