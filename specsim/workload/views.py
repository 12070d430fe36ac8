"""Views of a model: copies whose decoder linear weights are a number format's view of the FP16
weights, and early-exit copies that run only the first decoder layers (all else shared bit-for-bit)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from specsim.errors import SpecsimError
from specsim.workload.formats import get_format
from specsim.workload.formats.bsfp import BSFP
from specsim.workload.models import decoder_linears


def weight_view(model: torch.nn.Module, fmt: str, fingerprint: str | None = None) -> torch.nn.Module:
    """A copy of ``model`` whose decoder linear weights are format ``fmt``'s (draft) view of the FP16 weights.

    With ``fingerprint`` (:func:`~specsim.workload.cache.model_fingerprint` of ``model``) the view's
    weights come from specsim's cache when it holds them, and are stored there when it does not.
    """
    view = _view_function(fmt)
    if fingerprint is None:
        return weight_view_draft(model, view)
    from specsim.workload.cache import cached, environment

    key = {"kind": "weight_view", "model": fingerprint, "format": fmt, **environment()}
    weights, _ = cached(
        "views", key, lambda: view_weights(model, view), _save_weights, lambda folder: _load_weights(folder, model)
    )
    return _copy_with_weights(model, weights)


def weight_view_draft(model: torch.nn.Module, view: Callable[[torch.Tensor], torch.Tensor]) -> torch.nn.Module:
    """A copy of ``model`` whose decoder linear weights are ``view(fp16 weight)``; all else shared bit-for-bit."""
    return _copy_with_weights(model, view_weights(model, view))


def view_weights(model: torch.nn.Module, view: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    """``view(fp16 weight)`` of every decoder linear of ``model``, in the weight's dtype, by module name."""
    with torch.no_grad():
        return {
            name: view(lin.weight.detach().half()).to(lin.weight.dtype).contiguous()
            for name, lin in decoder_linears(model)
        }


def _copy_with_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A deep copy of ``model`` whose decoder linear weights are ``weights`` (those are not copied again)."""
    memo: dict = {}
    for name, lin in decoder_linears(model):
        w = weights[name]
        if w.shape != lin.weight.shape or w.dtype != lin.weight.dtype:
            raise SpecsimError(
                f"weight view of {name}: {tuple(w.shape)} {w.dtype}, expected "
                f"{tuple(lin.weight.shape)} {lin.weight.dtype}"
            )
        memo[id(lin.weight)] = torch.nn.Parameter(w, requires_grad=lin.weight.requires_grad)
    draft = copy.deepcopy(model, memo)
    draft.eval()
    return draft


def _save_weights(weights: dict[str, torch.Tensor], folder) -> None:
    """Weights as safetensors, in FP16 when that holds them bit-exactly (format views are FP16 values), else as is."""
    from safetensors.torch import save_file

    stored = {}
    for name, w in weights.items():
        half = w.half()
        exact = w.dtype == torch.float32 and torch.equal(half.float().view(torch.int32), w.view(torch.int32))
        stored[name] = half if exact else w
    save_file(stored, str(folder / "weights.safetensors"))


def _load_weights(folder, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    stored = load_file(str(folder / "weights.safetensors"))
    names = [name for name, _ in decoder_linears(model)]
    if sorted(stored) != sorted(names):
        raise ValueError("cached view holds other layers")
    return {name: stored[name].to(lin.weight.dtype) for name, lin in decoder_linears(model)}


def lm_head_view(model: torch.nn.Module, fmt: str) -> torch.nn.Module:
    """A copy of ``model`` whose lm_head weight is format ``fmt``'s (draft) view of the FP16 lm_head; all else
    (decoder layers, norms and the input embedding, even when lm_head is tied to it) shared bit-for-bit.

    A tied model is untied in the copy only: the embedding lookup still reads the FP16 rows (a BSFP word
    reconstructs them exactly; other formats keep a separate lm_head copy, see ``decoding.lm_head_formats``).
    """
    if fmt == "fp16":
        return model
    view = _view_function(fmt)
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear):
        raise SpecsimError(f"--draft-lm-head {fmt}: the model has no linear output embedding (lm_head) to draft")
    with torch.no_grad():
        weight = torch.nn.Parameter(view(head.weight.detach().half()).to(head.weight.dtype).contiguous(), False)
    new_head = copy.deepcopy(head, {id(head.weight): weight})  # its own module: hooks are not shared
    draft = _shallow(model)
    draft.set_output_embeddings(new_head)
    return draft


def _view_function(fmt: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function that turns FP16 weights into format ``fmt``'s (draft) view of them."""
    if fmt.startswith("bsfp_draft_"):
        return BSFP(fmt.removeprefix("bsfp_draft_")).quantize_draft
    return get_format(fmt).quantize


def early_exit(model: torch.nn.Module, layers: int) -> torch.nn.Module:
    """A copy of ``model`` that runs only its first ``layers`` decoder layers, then the final norm and lm_head."""
    total = model.config.num_hidden_layers
    if not 1 <= layers <= total:
        raise SpecsimError(f"early:{layers}: the model has {total} decoder layers")
    draft = _shallow(model)  # share the layer modules and weights; replace only the containers that change
    draft.model = _shallow(model.model)
    draft.model.layers = torch.nn.ModuleList(list(model.model.layers)[:layers])
    draft.config = copy.deepcopy(model.config)
    draft.config.num_hidden_layers = layers
    draft.model.config = draft.config
    return draft


def _shallow(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` sharing its children and parameters but with its own child registry."""
    twin = copy.copy(module)
    twin._modules = dict(module._modules)
    return twin
