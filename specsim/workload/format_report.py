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
* ``greedy_agreement`` (with ``--agreement``): teacher-forced greedy top-1 agreement with the FP16
  model on the calibration text when the decoder linears use the format's weights (activations stay
  16-bit): the per-token acceptance probability of a greedy draft built from the format;
* ``activation_sqnr_db`` (formats that quantize activations: OliVe, Tender, INT8 as W8A8): SQNR of
  the quantized inputs of every linear layer, captured on a shipped calibration text.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numba as nb
import numpy as np
import torch

from specsim.errors import SpecsimError
from specsim.workload.formats import FORMAT_NAMES, bsfp, fp16, get_format
from specsim.workload.formats.bsfp import BSFP
from specsim.workload.formats.integer import fp16_scale, quantize_symmetric
from specsim.workload.models import decoder_linears, linear_inputs
from specsim.workload.quantized import activation_quantizer


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
    greedy_agreement: float | None = None
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = asdict(self)
        if out["roundtrip_mismatches"] is None:
            del out["roundtrip_mismatches"]
        for optional in ("activation_sqnr_db", "greedy_agreement"):
            if out[optional] is None:
                del out[optional]
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


CALIBRATION_TOKENS = 128  #: tokens of the calibration text whose activations are measured
AGREEMENT_TOKENS = 1024  #: at most this many tokens of the calibration text score greedy agreement


def bsfp_group(name: str) -> str:
    """Encoding group of a format name: its BSFP layout (one encode serves draft and full) or itself."""
    return _bsfp_layout(name) or name


def _bsfp_layout(name: str) -> str | None:
    if name == "bsfp_full":
        return bsfp.DEFAULT_LAYOUT
    return name.removeprefix("bsfp_draft_") if name.startswith("bsfp_draft_") else None


@dataclass
class _View:
    """One format's view of one tensor: approximation and storage figures."""

    name: str
    approx: torch.Tensor
    stored_bits: int
    fetched_bits: int
    outliers: int
    mismatches: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _bsfp_views(layout: str, wanted: set[str]):
    """Encoder for one BSFP layout: one encode gives its draft view and (default layout) the full view."""
    codec = BSFP(layout)

    def views(w16: torch.Tensor) -> list[_View]:
        enc = codec.encode(w16)
        full = codec.decode_fp16(enc)
        mism = int((~fp16.bits_equal(full, w16)).sum())
        out = []
        for name, approx, fetched in (
            (f"bsfp_draft_{layout}", lambda: codec.decode_draft(enc), enc.fetched_bits()),
            ("bsfp_full", lambda: full.float(), enc.stored_bits()),
        ):
            if name in wanted and _bsfp_layout(name) == layout:
                out.append(_View(name, approx(), enc.stored_bits(), fetched, enc.outlier_count(), mism, enc.counts))
        return out

    return views


def _format_views(name: str):
    fmt = get_format(name)

    def views(w16: torch.Tensor) -> list[_View]:
        enc = fmt.encode(w16)
        return [_View(name, fmt.decode(enc), enc.stored_bits(), enc.fetched_bits(), enc.outlier_count())]

    return views


def evaluate_weights(
    weights: list[tuple[str, torch.Tensor]],
    names: list[str],
    progress: Callable[[str], None] | None = None,
    on_format: Callable[[str, list[torch.Tensor]], None] | None = None,
) -> dict[str, FormatStats]:
    """Apply each named format to every weight tensor and aggregate its error.

    Formats are processed one after the other (a BSFP layout once for its draft and full views).
    ``progress(layer)`` is called after each tensor of each format group; ``on_format(name,
    approximations)``, if given, receives every format's approximated tensors (float32, in the order
    of ``weights``) when that format is done -- e.g. to run the model with them.
    """
    unknown = [n for n in names if n not in FORMAT_NAMES]
    if unknown:
        raise SpecsimError(f"unknown format '{unknown[0]}'; expected one of: {', '.join(FORMAT_NAMES)}")
    if not weights:
        raise SpecsimError("the model has no decoder linear layers (expected a causal LM with '.layers.' blocks)")
    for layer, w in weights:
        if not bool(torch.isfinite(w).all()):
            raise SpecsimError(f"layer {layer}: non-finite weights (inf/NaN); formats need finite weights")
    wanted = set(names)
    groups = [_bsfp_views(lay, wanted) for lay in dict.fromkeys(filter(None, map(_bsfp_layout, names)))]
    groups += [_format_views(n) for n in names if _bsfp_layout(n) is None]
    acc = {n: ErrorAccumulator() for n in names}
    secs = {n: 0.0 for n in names}
    counts: dict[str, dict[str, int]] = {n: {} for n in names}
    for views in groups:
        kept: dict[str, list[torch.Tensor]] = {}
        for layer, w in weights:
            w16 = w.detach().half()
            t = time.perf_counter()
            results = views(w16)
            dt = time.perf_counter() - t
            for v in results:
                a = acc[v.name]
                a.add(w16, v.approx)
                a.stored_bits += v.stored_bits
                a.fetched_bits += v.fetched_bits
                a.outliers += v.outliers
                a.mismatches += v.mismatches
                secs[v.name] += dt
                for key, c in v.counts.items():
                    counts[v.name][key] = counts[v.name].get(key, 0) + c
                if on_format is not None:
                    kept.setdefault(v.name, []).append(v.approx.reshape(w.shape).float())
            if progress is not None:
                progress(layer)
        for name, approximations in kept.items():
            on_format(name, approximations)
    return {n: _stats(acc[n], secs[n], _bsfp_layout(n) is not None, counts[n]) for n in names}


def greedy_agreement(
    model, linears, ids: torch.Tensor, approximations: list[torch.Tensor], reference: torch.Tensor
) -> float:
    """Teacher-forced greedy agreement of a model whose ``linears`` use ``approximations``.

    The fraction of positions of ``ids`` where the argmax next token equals ``reference`` (the FP16
    model's argmax): the probability that a greedy draft with these weights has a token accepted. The
    original weights are restored afterwards.
    """
    originals = [lin.weight.detach().clone() for _, lin in linears]
    try:
        with torch.no_grad():
            for (_, lin), w in zip(linears, approximations):
                lin.weight.copy_(w)
            pred = model(ids).logits[0].argmax(dim=-1)
    finally:
        with torch.no_grad():
            for (_, lin), w in zip(linears, originals):
                lin.weight.copy_(w)
    return float((pred == reference).float().mean())


def capture_linear_inputs(model, tokenizer, text: str, max_tokens: int = CALIBRATION_TOKENS) -> dict[str, torch.Tensor]:
    """Inputs ``[tokens, in_features]`` of every decoder linear layer for one forward pass on ``text``."""
    return linear_inputs(model, tokenizer(text, return_tensors="pt").input_ids[:, :max_tokens])


def _quantize_activation(name: str, x: torch.Tensor) -> torch.Tensor | None:
    """Quantize-dequantize activations as format ``name`` does (None if it keeps them 16-bit)."""
    quantizer = activation_quantizer(name)
    if quantizer is not None:
        return quantizer.calibrate(x).quantize(x)
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


@dataclass
class ModelFormats:
    """``specsim formats`` on one model: per-format statistics over its decoder linears (seconds of wall time)."""

    model: str
    layers: int  #: decoder linear layers evaluated
    weights: int  #: weights in them
    formats: dict[str, FormatStats]
    seconds: float
    load_seconds: float
    weights_seconds: float
    activations_seconds: float

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "layers": self.layers,
            "weights": self.weights,
            "seconds": round(self.seconds, 2),
            "seconds_breakdown": {
                "model_load": round(self.load_seconds, 2),
                "weights": round(self.weights_seconds, 2),
                "activations": round(self.activations_seconds, 2),
            },
            "formats": {n: s.to_json() for n, s in self.formats.items()},
        }


def evaluate_model(
    model: str,
    names: list[str] | None = None,
    layers: int | None = None,
    agreement: bool = False,
    activations: bool = True,
    progress: bool = True,
) -> ModelFormats:
    """Apply every format in ``names`` (default: all) bit-exactly to the first ``layers`` decoder linears of
    ``model``: weight statistics, activation SQNR on the shipped calibration text and, with ``agreement``,
    teacher-forced greedy agreement of the model with those weights."""
    from tqdm import tqdm

    from specsim.workload.models import load_model
    from specsim.workload.prompts import shipped_text

    names = list(FORMAT_NAMES) if names is None else names
    unknown = [n for n in names if n not in FORMAT_NAMES]
    if unknown or not names:
        raise SpecsimError(
            f"--formats: unknown format '{unknown[0] if unknown else ''}'; expected one of: {', '.join(FORMAT_NAMES)}"
        )
    if layers is not None and layers < 1:
        raise SpecsimError("--layers: expected a positive integer")
    start = time.perf_counter()
    loaded = load_model(model, tokenizer=agreement or activations)
    linears = decoder_linears(loaded.model)[:layers]
    weights = [(name, module.weight) for name, module in linears]
    on_format, agreed = _agreement_hook(loaded, linears) if agreement else (None, {})
    bar = tqdm(
        total=len(weights) * len({bsfp_group(n) for n in names}),
        desc="formats",
        unit="layer",
        file=sys.stderr,
        disable=None if progress else True,
    )
    stats = evaluate_weights(weights, names, progress=lambda _layer: bar.update(), on_format=on_format)
    bar.close()
    for name, value in agreed.items():
        stats[name].greedy_agreement = value
    weights_done = time.perf_counter()
    if activations:
        keep = {name for name, _ in linears}
        inputs = capture_linear_inputs(loaded.model, loaded.tokenizer, shipped_text("calibration"))
        for name, sqnr in evaluate_activations({k: v for k, v in inputs.items() if k in keep}, names).items():
            stats[name].activation_sqnr_db = sqnr
    end = time.perf_counter()
    return ModelFormats(
        model,
        len(weights),
        sum(w.numel() for _, w in weights),
        stats,
        end - start,
        loaded.load_seconds,
        weights_done - start - loaded.load_seconds,
        end - weights_done,
    )


def _agreement_hook(loaded, linears):
    """A callback measuring greedy agreement per format on the shipped calibration text, and its results."""
    from specsim.workload.prompts import shipped_text

    ids = loaded.tokenizer(shipped_text("calibration"), return_tensors="pt").input_ids[:, :AGREEMENT_TOKENS]
    with torch.no_grad():
        reference = loaded.model(ids).logits[0].argmax(dim=-1)
    agreed: dict[str, float] = {}

    def on_format(name, approximations):
        agreed[name] = greedy_agreement(loaded.model, linears, ids, approximations, reference)

    return on_format, agreed
