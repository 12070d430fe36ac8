"""Quantized models that decode on their own (no speculation), to measure how far they drift from FP16.

* ``olive4`` / ``olive8``: OliVe W4A4 / W8A8 -- outlier-victim-pair weights (per row) and static
  per-tensor OliVe activations calibrated offline, at the input of every decoder linear;
* ``tender4`` / ``tender8``: Tender -- per-row INT weights and power-of-two channel-group activations
  calibrated offline (the accelerator's runtime chunk mode is :meth:`TenderActivationQuantizer.quantize`
  with ``runtime=True``);
* ``int4``: INT4 per output channel, weight-only (activations stay 16-bit);
* ``int4_g128``: INT4 with one FP16 scale per group of 128 input features, weight-only (W4A16).

lm_head, embeddings, norms, attention and the KV cache stay 16-bit in every case, as in the
accelerators these model (they quantize the linear layers' GEMMs).
"""

from __future__ import annotations

import torch

from specsim.errors import SpecsimError
from specsim.workload.formats.olive import OliveActivationQuantizer
from specsim.workload.formats.tender import DEFAULT_GROUPS, TenderActivationQuantizer
from specsim.workload.models import decoder_linears, linear_inputs
from specsim.workload.views import weight_view

#: drift formats; each is also the weight format of the model's decoder linears
DRIFT_FORMATS = ("olive4", "olive8", "tender4", "tender8", "int4", "int4_g128")


def activation_quantizer(fmt: str):
    """A fresh (uncalibrated) activation quantizer for a format (olive4/8, tender4/8), or None if it keeps
    activations 16-bit."""
    if fmt.startswith("olive"):
        return OliveActivationQuantizer(int(fmt[-1]))
    if fmt.startswith("tender"):
        return TenderActivationQuantizer(int(fmt[-1]), DEFAULT_GROUPS)
    return None


def quantized_model(model: torch.nn.Module, fmt: str, calibration_ids: torch.Tensor) -> torch.nn.Module:
    """A copy of ``model`` with quantized decoder linear weights and (for W*A* formats) quantized inputs.

    Activation quantizers are calibrated on the FP16 model's linear inputs for ``calibration_ids``
    ``[1, T]`` and applied by forward pre-hooks that travel with the returned model.
    """
    if fmt not in DRIFT_FORMATS:
        raise SpecsimError(f"unknown drift format '{fmt}'; expected one of {', '.join(DRIFT_FORMATS)}")
    quantized = weight_view(model, fmt)
    if activation_quantizer(fmt) is None:
        return quantized
    inputs = linear_inputs(model, calibration_ids)
    for name, lin in decoder_linears(quantized):
        quantizer = activation_quantizer(fmt).calibrate(inputs[name])

        def quantize_input(_mod, args, quantizer=quantizer):
            x = args[0]
            return (quantizer.quantize(x.reshape(-1, x.shape[-1])).reshape(x.shape).to(x.dtype),) + args[1:]

        lin.register_forward_pre_hook(quantize_input)
    return quantized


def perplexity(model: torch.nn.Module, ids: torch.Tensor, window: int = 512) -> float:
    """Perplexity of ``model`` on token ids ``[1, T]``, in non-overlapping windows of ``window`` tokens."""
    nll, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, ids.shape[1] - 1, window):
            chunk = ids[:, start : start + window + 1]
            if chunk.shape[1] < 2:
                break
            logits = model(chunk[:, :-1]).logits[0].double()
            nll += float(torch.nn.functional.cross_entropy(logits, chunk[0, 1:], reduction="sum"))
            count += chunk.shape[1] - 1
    return float(torch.exp(torch.tensor(nll / count)))
