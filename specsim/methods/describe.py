"""Listings of the registered methods (``specsim methods``): name, kind, drafts, parameters with units."""

from __future__ import annotations

import dataclasses
from typing import Any

from specsim.methods.base import get_method, method_names


def describe() -> list[dict[str, Any]]:
    """One record per registered method: name, summary, kind, draft schemes, target formats, layer
    statistics and parameters (name, required, default, unit, doc; a required one is a hardware constant
    each run config states)."""
    out = []
    for name in method_names():
        m = get_method(name)
        params = [
            {
                "name": f.name,
                "required": f.default is dataclasses.MISSING,
                "default": None if f.default is dataclasses.MISSING else f.default,
                "unit": f.metadata.get("unit", ""),
                "doc": f.metadata.get("doc", ""),
            }
            for f in dataclasses.fields(m.Params)
        ]
        out.append(
            {
                "name": name,
                "summary": m.summary,
                "kind": m.kind,
                "lossless": m.lossless,
                "drafts": list(m.drafts),
                "target_formats": list(m.target_formats),
                "layer_stats": list(m.layer_stats),
                "params": params,
            }
        )
    return out
