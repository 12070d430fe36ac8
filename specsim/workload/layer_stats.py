"""Per-layer operand statistics the hardware models need, measured once per model (they do not change per step).

For every decoder linear layer of the FP16 target, on its real weights and on its real inputs for
the shipped calibration text (:data:`~specsim.workload.format_report.CALIBRATION_TOKENS` tokens):

=========================  ==================================================================
``w_zero_frac``            fraction of weights that are exactly zero
``a_zero_frac``            fraction of input activations that are exactly zero
``w_olive_pair_frac``      fraction of weight pairs OliVe-4 stores as outlier-victim pairs
``a_olive_pair_frac``      the same for the input activations (static per-tensor OliVe-4)
``tender_groups``          Tender channel groups occupied by the input activations (of G configured)
``bsfp_outlier_frac``      fraction of weights on the BSFP side list (default layout)
=========================  ==================================================================
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from specsim.trace.tracefile import LAYER_STATS as STAT_NAMES


def layer_stats(model: torch.nn.Module, calibration_ids: torch.Tensor, progress: bool = True) -> dict[str, np.ndarray]:
    """Trace arrays ``ls_layer``, ``ls_name`` (index into :func:`linear_short_names`) and one per statistic."""
    from tqdm import tqdm

    from specsim.workload.formats import bsfp
    from specsim.workload.formats.bsfp import BSFP
    from specsim.workload.formats.olive import OliVe, encode_with, search
    from specsim.workload.models import decoder_linears, linear_inputs
    from specsim.workload.quantized import activation_quantizer

    inputs = linear_inputs(model, calibration_ids)
    linears = decoder_linears(model)
    names = linear_short_names(model)
    codec = BSFP(bsfp.DEFAULT_LAYOUT)
    rows: dict[str, list] = {k: [] for k in ("ls_layer", "ls_name", *STAT_NAMES)}
    for full, lin in tqdm(
        linears, desc="layer statistics", unit="layer", file=sys.stderr, disable=None if progress else True
    ):
        w = lin.weight.detach().half()
        x = inputs[full]
        layer, short = int(full.split(".layers.")[1].split(".")[0]), full.rsplit(".", 1)[-1]
        pairs_w = w.numel() // 2
        choice = search(x, 4, per_row=False)
        tender = activation_quantizer("tender4").calibrate(x).calibration
        rows["ls_layer"].append(layer)
        rows["ls_name"].append(names.index(short))
        rows["w_zero_frac"].append(float((w == 0).sum()) / w.numel())
        rows["a_zero_frac"].append(float((x == 0).sum()) / x.numel())
        rows["w_olive_pair_frac"].append(OliVe(4).encode(w).outlier_count() / pairs_w)
        rows["a_olive_pair_frac"].append(encode_with(x, choice).outlier_count() / (x.numel() // 2))
        rows["tender_groups"].append(int(tender.group.unique().numel()))
        rows["bsfp_outlier_frac"].append(codec.encode(w).outlier_count() / w.numel())
    out = {k: np.asarray(v, dtype=np.float32) for k, v in rows.items() if k in STAT_NAMES}
    out["ls_layer"] = np.asarray(rows["ls_layer"], dtype=np.int16)
    out["ls_name"] = np.asarray(rows["ls_name"], dtype=np.int16)
    return out


def cached_layer_stats(
    model: torch.nn.Module, calibration_ids: torch.Tensor, fingerprint: str | None, progress: bool = True
) -> tuple[dict[str, np.ndarray], bool]:
    """:func:`layer_stats` through specsim's cache (:mod:`specsim.workload.cache`) when ``fingerprint``
    (of ``model``) is given; returns the arrays and whether they came from the cache."""
    import hashlib

    from specsim.workload.cache import cached, environment
    from specsim.workload.formats import bsfp

    if fingerprint is None:
        return layer_stats(model, calibration_ids, progress), False
    ids = np.ascontiguousarray(calibration_ids.detach().cpu().numpy().astype(np.int64))
    key = {
        "kind": "layer_stats",
        "model": fingerprint,
        "calibration": hashlib.sha256(ids.tobytes()).hexdigest(),
        "calibration_shape": list(ids.shape),
        "stats": list(STAT_NAMES),
        "bsfp_layout": bsfp.DEFAULT_LAYOUT,
        "threads": torch.get_num_threads(),
        **environment(),
    }
    names = ("ls_layer", "ls_name", *STAT_NAMES)

    def save(arrays: dict[str, np.ndarray], folder) -> None:
        np.savez(folder / "stats.npz", **arrays)

    def load(folder) -> dict[str, np.ndarray]:
        with np.load(folder / "stats.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if sorted(arrays) != sorted(names):
            raise ValueError("cached layer statistics hold other arrays")
        return arrays

    return cached("layer_stats", key, lambda: layer_stats(model, calibration_ids, progress), save, load)


def linear_short_names(model: torch.nn.Module) -> list[str]:
    """Distinct short names of the decoder linears (q_proj, k_proj, ...), in model order."""
    from specsim.workload.models import decoder_linears

    names: list[str] = []
    for full, _ in decoder_linears(model):
        short = full.rsplit(".", 1)[-1]
        if short not in names:
            names.append(short)
    return names
