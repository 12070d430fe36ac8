#!/usr/bin/env python
"""Per-block BSFP layouts against MXFP4 and the default BSFP draft: bits, SQNR and greedy agreement.

Run: ``python benchmarks/bench_bsfp_blocks.py [--model M] [LAYOUT ...]``

A layout is a named layout (``bsfp.LAYOUTS``), ``mxfp4``, or a block spec
``<base>_b<block>[s<shift bits>][_t<tables>[e]][_max]`` (see :func:`bsfp.block_layout`), e.g.
``lut8_b32``, ``lut8_b32s6_t4e``. Greedy agreement is teacher-forced top-1 agreement with the FP16
model on the shipped calibration text (as ``specsim formats --agreement``); every BSFP encode is
checked bit-exact on its full decode.
"""

from __future__ import annotations

import argparse
import re
import time

import torch

from specsim.workload import format_report as fr
from specsim.workload.formats import bsfp, fp16
from specsim.workload.formats.mxfp4 import MXFP4
from specsim.workload.models import decoder_linears, load_model
from specsim.workload.prompts import shipped_text

DEFAULT = ["mxfp4", bsfp.DEFAULT_LAYOUT, "lut8_b32", "lut8_b32_max", "e2m1_b32", "lut8_b32s6_t4", "lut8_b64_t4"]


def parse_layout(spec: str) -> bsfp.BSFPLayout:
    if spec in bsfp.LAYOUTS:
        return bsfp.LAYOUTS[spec]
    m = re.fullmatch(r"(e3|e2m1|lut8)_b(\d+)(?:s(\d))?(?:_t(\d)(e?))?(_max)?", spec)
    if not m:
        raise SystemExit(f"bad layout spec {spec}")
    return bsfp.block_layout(
        m[1],
        int(m[2]),
        int(m[3]) if m[3] else bsfp.SHIFT_BITS,
        int(m[4]) if m[4] else 1,
        "max" if m[6] else "mse",
        "mse" if m[5] else "max",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("layouts", nargs="*", default=DEFAULT)
    args = ap.parse_args()
    loaded = load_model(args.model)
    model, linears = loaded.model, decoder_linears(loaded.model)
    ids = loaded.tokenizer(shipped_text("calibration"), return_tensors="pt").input_ids[:, : fr.AGREEMENT_TOKENS]
    with torch.no_grad():
        reference = model(ids).logits[0].argmax(dim=-1)
    weights = [lin.weight.detach().half() for _, lin in linears]
    n = sum(w.numel() for w in weights)
    print(f"# {args.model}: {len(weights)} linears, {n / 1e6:.1f} M weights, agreement over {ids.shape[1]} tokens")
    print(f"{'layout':22s} {'bits/w':>7s} {'SQNR dB':>8s} {'agreement':>9s} {'side':>6s} {'seconds':>8s}", flush=True)
    for spec in args.layouts:
        t0 = time.perf_counter()
        acc = fr.ErrorAccumulator()
        approx, side = [], 0
        for w in weights:
            if spec == "mxfp4":
                fmt = MXFP4()
                enc = fmt.encode(w)
                a = fmt.decode(enc)
            else:
                codec = bsfp.BSFP(parse_layout(spec))
                enc = codec.encode(w)
                full = codec.decode_fp16(enc)
                assert bool(fp16.bits_equal(full, w).all()), f"{spec}: full decode not bit-exact"
                a = codec.decode_draft(enc)
                side += enc.outlier_count()
            acc.add(w, a)
            acc.fetched_bits += enc.fetched_bits()
            approx.append(a)
        agree = fr.greedy_agreement(model, linears, ids, approx, reference)
        secs = time.perf_counter() - t0
        print(
            f"{spec:22s} {acc.fetched_bits / n:7.4f} {acc.sqnr_db:8.2f} {agree:9.3f} {side:6d} {secs:8.1f}", flush=True
        )


if __name__ == "__main__":
    main()
