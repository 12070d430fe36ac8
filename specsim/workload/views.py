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


def weight_view(model: torch.nn.Module, fmt: str) -> torch.nn.Module:
    """A copy of ``model`` whose decoder linear weights are format ``fmt``'s (draft) view of the FP16 weights."""
    if fmt.startswith("bsfp_draft_"):
        view = BSFP(fmt.removeprefix("bsfp_draft_")).quantize_draft
    else:
        view = get_format(fmt).quantize
    return weight_view_draft(model, view)


def weight_view_draft(model: torch.nn.Module, view: Callable[[torch.Tensor], torch.Tensor]) -> torch.nn.Module:
    """A copy of ``model`` whose decoder linear weights are ``view(fp16 weight)``; all else shared bit-for-bit."""
    draft = copy.deepcopy(model)
    with torch.no_grad():
        for _, lin in decoder_linears(draft):
            lin.weight.copy_(view(lin.weight.detach().half()).to(lin.weight.dtype))
    draft.eval()
    return draft


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
