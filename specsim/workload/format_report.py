"""Apply every number format to every linear layer of a real model and measure its error.

Metrics per format, aggregated over all layers (weights are the FP16 target):

* ``bits_per_weight``: bits a pass with this format fetches per weight, metadata included
  (for ``bsfp_draft_*``: the top-nibble plane + draft metadata; for every other format = storage);
* ``stored_bits_per_weight``: bits held in memory per weight, metadata included;
* ``sqnr_db``: ``10 log10(sum w^2 / sum (w - w_hat)^2)`` over all weights (``null`` if lossless);
* ``max_abs_err``: largest ``|w - w_hat|``;
* ``outlier_fraction``: fraction of weights off the format's normal path (BSFP side list, MXFP4
  saturated elements, OliVe abfloat outliers, 0 for INT/Tender weights with max scaling);
* ``roundtrip_mismatches`` (BSFP only): weights whose full 16-bit decode differs from the FP16
  original in any bit (must be 0);
* ``activation_sqnr_db`` (formats that quantize activations: OliVe, Tender, INT8 as W8A8): SQNR of
  the quantized inputs of every linear layer, captured on a shipped calibration text.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from importlib import resources

import numba as nb
import numpy as np
import torch

from specsim.errors import SpecsimError
from specsim.workload.formats import FORMAT_NAMES, bsfp, fp16, get_format
from specsim.workload.formats.bsfp import BSFP
from specsim.workload.formats.integer import fp16_scale, quantize_symmetric
from specsim.workload.formats.olive import OliveActivationQuantizer
from specsim.workload.formats.tender import DEFAULT_GROUPS, TenderActivationQuantizer


@nb.njit(cache=True, parallel=True)
def _error_sums(ref: np.ndarray, approx: np.ndarray):
    """Per-row sum ref^2, sum (approx - ref)^2 (float64) and max |approx - ref|."""
    rows, cols = ref.shape
    signal = np.zeros(rows)
    noise = np.zeros(rows)
    max_err = np.zeros(rows)
    for r in nb.prange(rows):
        s = 0.0
        n = 0.0
        m = 0.0
        for c in range(cols):
            x = np.float64(ref[r, c])
            e = np.float64(approx[r, c]) - x
            s += x * x
            n += e * e
            m = max(m, abs(e))
        signal[r] = s
        noise[r] = n
        max_err[r] = m
    return signal, noise, max_err


@dataclass
class ErrorAccumulator:
    """Running sums of one format's error over many tensors."""

    numel: int = 0
    signal: float = 0.0
    noise: float = 0.0
    max_abs_err: float = 0.0
    outliers: int = 0
    stored_bits: int = 0
    fetched_bits: int = 0
    mismatches: int = 0

    def add(self, ref: torch.Tensor, approx: torch.Tensor) -> None:
        r = ref.detach().float().reshape(ref.shape[0], -1).contiguous().numpy()
        a = approx.detach().float().reshape(r.shape).contiguous().numpy()
        signal, noise, max_err = _error_sums(r, a)
        self.numel += r.size
        self.signal += float(signal.sum())
        self.noise += float(noise.sum())
        self.max_abs_err = max(self.max_abs_err, float(max_err.max(initial=0.0)))

    @property
    def sqnr_db(self) -> float | None:
        if self.noise == 0:
            return None
        return 10 * math.log10(self.signal / self.noise) if self.signal > 0 else -math.inf


@dataclass
class FormatStats:
    """What ``specsim formats`` reports for one format (see the module docstring)."""

    bits_per_weight: float
    stored_bits_per_weight: float
    sqnr_db: float | None
    max_abs_err: float
    outlier_fraction: float
    roundtrip_mismatches: int | None = None
    activation_sqnr_db: float | None = None
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = asdict(self)
        if out["roundtrip_mismatches"] is None:
            del out["roundtrip_mismatches"]
        if out["activation_sqnr_db"] is None:
            del out["activation_sqnr_db"]
        if not out["counts"]:
            del out["counts"]
        return out


def _stats(acc: ErrorAccumulator, seconds: float, bsfp_check: bool = False, counts=None) -> FormatStats:
    n = max(acc.numel, 1)
    return FormatStats(
        bits_per_weight=acc.fetched_bits / n,
        stored_bits_per_weight=acc.stored_bits / n,
        sqnr_db=acc.sqnr_db,
        max_abs_err=acc.max_abs_err,
        outlier_fraction=acc.outliers / n,
        roundtrip_mismatches=acc.mismatches if bsfp_check else None,
        seconds=seconds,
        counts=counts or {},
    )


def _bsfp_layout(name: str) -> str | None:
    if name == "bsfp_full":
        return bsfp.DEFAULT_LAYOUT
    return name.removeprefix("bsfp_draft_") if name.startswith("bsfp_draft_") else None


def evaluate_weights(
    weights: list[tuple[str, torch.Tensor]], names: list[str], progress=None
) -> dict[str, FormatStats]:
    """Apply each named format to every weight tensor; BSFP layouts are encoded once per tensor."""
    unknown = [n for n in names if n not in FORMAT_NAMES]
    if unknown:
        raise SpecsimError(f"unknown format '{unknown[0]}'; expected one of: {', '.join(FORMAT_NAMES)}")
    for layer, w in weights:
        if not bool(torch.isfinite(w).all()):
            raise SpecsimError(f"layer {layer}: non-finite weights (inf/NaN); formats need finite weights")
    layouts = sorted({_bsfp_layout(n) for n in names} - {None})
    others = [n for n in names if _bsfp_layout(n) is None]
    acc = {n: ErrorAccumulator() for n in names}
    secs = {n: 0.0 for n in names}
    bsfp_counts: dict[str, dict[str, int]] = {lay: {} for lay in layouts}
    formats = {n: get_format(n) for n in others}
    codecs = {lay: BSFP(lay) for lay in layouts}
    for layer, w in weights:
        w16 = w.detach().half()
        ref = w16.float()
        for lay, codec in codecs.items():
            t = time.perf_counter()
            enc = codec.encode(w16)
            full = codec.decode_fp16(enc)
            draft = codec.decode_draft(enc)
            dt = time.perf_counter() - t
            mism = int((~fp16.bits_equal(full, w16)).sum())
            for key, c in enc.counts.items():
                bsfp_counts[lay][key] = bsfp_counts[lay].get(key, 0) + c
            for name, approx, fetched in (
                (f"bsfp_draft_{lay}", draft, enc.fetched_bits()),
                ("bsfp_full" if lay == bsfp.DEFAULT_LAYOUT else None, full.float(), enc.stored_bits()),
            ):
                if name in acc:
                    a = acc[name]
                    a.add(ref, approx)
                    a.stored_bits += enc.stored_bits()
                    a.fetched_bits += fetched
                    a.outliers += enc.outlier_count()
                    a.mismatches += mism
                    secs[name] += dt
        for name, fmt in formats.items():
            t = time.perf_counter()
            enc = fmt.encode(w16)
            approx = fmt.decode(enc)
            secs[name] += time.perf_counter() - t
            a = acc[name]
            a.add(ref, approx)
            a.stored_bits += enc.stored_bits()
            a.fetched_bits += enc.fetched_bits()
            a.outliers += enc.outlier_count()
        if progress is not None:
            progress(layer)
    return {
        n: _stats(acc[n], secs[n], _bsfp_layout(n) is not None, bsfp_counts.get(_bsfp_layout(n) or "", None))
        for n in names
    }


def calibration_text() -> str:
    """The shipped calibration text (a few paragraphs of prose, arithmetic and code)."""
    return resources.files("specsim.data").joinpath("text/calibration.txt").read_text(encoding="utf-8")


def capture_linear_inputs(model, tokenizer, text: str, max_tokens: int = 128) -> dict[str, torch.Tensor]:
    """Inputs ``[tokens, in_features]`` of every decoder linear layer for one forward pass on ``text``."""
    from specsim.workload.models import decoder_linears

    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in decoder_linears(model):
        def hook(_mod, args, _out, name=name):
            captured[name] = args[0].detach().reshape(-1, args[0].shape[-1]).float().clone()
        hooks.append(module.register_forward_hook(hook))
    try:
        ids = tokenizer(text, return_tensors="pt").input_ids[:, :max_tokens]
        with torch.no_grad():
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    return captured


def _quantize_activation(name: str, x: torch.Tensor) -> torch.Tensor | None:
    """Quantize-dequantize activations as format ``name`` does (None if it keeps them 16-bit)."""
    if name in ("olive4", "olive8"):
        return OliveActivationQuantizer(int(name[-1])).calibrate(x).quantize(x)
    if name in ("tender4", "tender8"):
        return TenderActivationQuantizer(int(name[-1]), DEFAULT_GROUPS).calibrate(x).quantize(x)
    if name == "int8":  # W8A8: dynamic symmetric INT8 per token
        scale = fp16_scale(x.abs().amax(dim=1, keepdim=True), 8)
        return quantize_symmetric(x, scale, 8).float() * scale
    return None


def evaluate_activations(inputs: dict[str, torch.Tensor], names: list[str]) -> dict[str, float | None]:
    """Activation SQNR (dB) per format over all captured linear inputs, for formats that quantize them."""
    out: dict[str, float | None] = {}
    for name in names:
        acc = ErrorAccumulator()
        for x in inputs.values():
            q = _quantize_activation(name, x)
            if q is None:
                break
            acc.add(x, q)
        else:
            out[name] = acc.sqnr_db
    return out
