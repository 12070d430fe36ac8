#!/usr/bin/env python
"""Draft fidelity of BSFP layout variants on the real SmolLM2-135M: SQNR and greedy agreement.

Run: ``python benchmarks/bench_bsfp_layouts.py``

Greedy agreement = fraction of the calibration text's positions where the model with the drafted
decoder weights predicts the FP16 model's next token (teacher-forced): the per-token acceptance
probability of a greedy draft. Variants: every grid/table layout x alignment scope (tensor/row) x
fit (least squares / top level pinned at the maximum), the exact side list for the 8 largest
weights, and a probe of *several level tables per tensor* (rows grouped by the mantissa of their
aligned maximum into T classes, each class encoded with its own table; 2-3 bits/row of metadata),
which is not a named layout yet.
"""

from __future__ import annotations

import time

import torch

from specsim.workload import format_report as fr
from specsim.workload.formats import fp16
from specsim.workload.formats.bsfp import _GRIDS, BSFP, BSFPLayout
from specsim.workload.models import decoder_linears, load_model
from specsim.workload.prompts import shipped_text


def by_row_class(codec: BSFP, w16: torch.Tensor, tables: int) -> torch.Tensor:
    """Draft view with ``tables`` level tables per tensor, chosen per row by its aligned maximum."""
    peak = w16.float().abs().amax(dim=1)
    mantissa = peak / torch.exp2(fp16.floor_log2_abs(peak.half()).float())
    cls = (torch.log2(mantissa.clamp_min(1.0)) * tables).floor().long().clamp(0, tables - 1)
    out = torch.empty(w16.shape)
    for t in range(tables):
        rows = (cls == t).nonzero().reshape(-1)
        if rows.numel():
            out[rows] = codec.decode_draft(codec.encode(w16[rows]))
    return out


def main() -> None:
    loaded = load_model("smollm2-135m")
    model, linears = loaded.model, decoder_linears(loaded.model)
    ids = loaded.tokenizer(shipped_text("calibration"), return_tensors="pt").input_ids[:, : fr.AGREEMENT_TOKENS]
    with torch.no_grad():
        reference = model(ids).logits[0].argmax(dim=-1)
    weights = [lin.weight.detach().half() for _, lin in linears]
    print(f"# BSFP draft variants on SmolLM2-135M, greedy agreement over {ids.shape[1]} tokens")
    print(f"{'variant':28s} {'tables':>6s} {'SQNR dB':>8s} {'agreement':>9s} {'seconds':>8s}")
    variants = [
        BSFPLayout(f"{base}_{scope}_{fit}", _GRIDS[base], scope, fit)
        for base in ("e3", "e2m1", "lut8")
        for scope in ("tensor", "row")
        for fit in ("mse", "max")
    ]
    variants += [BSFPLayout("lut8_row_max_x8", None, "row", "max", 8)]
    runs = [(v, 1) for v in variants] + [(variants[-2], t) for t in (2, 4, 8)]
    for layout, tables in runs:
        t0 = time.perf_counter()
        codec = BSFP(layout)
        approx = [
            by_row_class(codec, w, tables) if tables > 1 else codec.decode_draft(codec.encode(w)) for w in weights
        ]
        acc = fr.ErrorAccumulator()
        for w, a in zip(weights, approx):
            acc.add(w, a)
        agree = fr.greedy_agreement(model, linears, ids, approx, reference)
        print(f"{layout.name:28s} {tables:6d} {acc.sqnr_db:8.2f} {agree:9.3f} {time.perf_counter() - t0:8.1f}")


if __name__ == "__main__":
    main()
