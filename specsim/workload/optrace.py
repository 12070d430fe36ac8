"""Operand traces: each model's operator template, and one step row per forward pass (prefill, draft, verify, decode).

Hooks sit on the modules that do the work: every decoder linear and lm_head (GEMMs), the norms,
the MLP activation function and the attention block (its pre-hook reads the KV length; the
attention GEMMs QK^T and PV and the softmax are emitted just before o_proj runs, where they happen).

A model runs the same operator sequence on every pass; only the token count M, the rows that reach
lm_head and the KV length change. So the first pass of each chain level fixes that level's
*operator template* (one row per operator: kind, layer, GEMM dims with symbolic M and KV length,
operand formats), and each later pass is one *step* row (level, phase, M, cached length, lm_head
rows), taken from what the decoder reports (:class:`~specsim.workload.speculative.StepObserver`).
Hooks are attached only for the passes that are observed: the first pass of every kind (level,
phase, one or several tokens, one or several lm_head rows) and then one pass in
:data:`CHECK_EVERY`. Each observed pass is checked against its level's template (operator
sequence, M, lm_head rows and KV length as the hooks see them), so a template that stopped
describing the model would raise, not silently mis-count; the other passes run without hooks, so
the operand trace adds almost nothing to a pass.

Sliding-window attention (Gemma 3, Mistral): an attention module with a ``sliding_window`` attribute
(what Hugging Face passes its attention kernel; Gemma 3's sliding layers), or of a model whose config sets
``sliding_window`` for every layer (Mistral: no ``layer_types``), gets that window on its QK^T, softmax and
PV rows (``OpSpec.window``; 0 = full attention). On an observed non-tree pass that receives a 4D attention mask,
the keys the pass's queries attend together (columns of the mask with any query allowed) are checked to
be the template's ``min(past + tokens, window + tokens - 1)`` (full attention: ``past + tokens``).
Gemma 3's RMSNorms of every query and key head (``q_norm``, ``k_norm``: inputs ``[batch, heads, tokens,
head_dim]``) are ``norm`` rows of ``heads x head_dim`` elements per token. Its embedding scale (a multiply
by sqrt(hidden) of the looked-up rows) is not an operator row, as the embedding lookup is not.

Tree passes (:mod:`specsim.workload.trees`) run under a tree attention mask. The model still computes
QK^T, softmax and PV densely over ``past + tokens`` keys (the mask only zeroes entries), so the hooks
see the same shapes as on any pass and the template check applies unchanged (it is exercised on tree
passes by the tests). What a tree-aware attention kernel would read is recorded separately: the
decoder reports the pass's *attention groups* (query tokens, keys attended) and they become rows of
:meth:`OpRecorder.attention_arrays` (``attn_step``, ``attn_tokens``, ``attn_kv``; steps without rows
attend the default way, ``tokens`` queries over ``past + tokens`` keys).

Work of operator ``o`` in step ``s`` = ``M x N x K x count`` (MACs for GEMMs, elements for vector
ops), with ``M`` = the step's tokens (``op_m == -1``) or lm_head rows (``op_m == -2``) and ``N``/``K``
= the step's KV length (``past + tokens``) where they are ``-1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from specsim.errors import SpecsimError
from specsim.trace.operators import M_LOGITS, M_TOKENS, OpSpec, attention_ops, template_arrays, window_kv
from specsim.trace.tracefile import PHASES
from specsim.workload.speculative import uniform_window

_LAYER = re.compile(r"\.layers\.(\d+)\.")
CHECK_EVERY = 64  #: after the first pass of each kind, one pass in this many is observed through hooks and checked


def attention_window(module) -> int:
    """Sliding window (tokens) of one attention module, 0 for full attention: its own ``sliding_window``
    (Gemma 3 sets it on sliding layers only), else its config's when that windows every layer (Mistral;
    :func:`~specsim.workload.speculative.uniform_window`)."""
    own = getattr(module, "sliding_window", None)
    if own:
        return int(own)
    cfg = getattr(module, "config", None)
    return uniform_window(cfg) if cfg is not None else 0


@dataclass
class _ModuleInfo:
    layer: int
    name: str
    kind: str  # linear, lm_head, norm, head_norm, activation, attention
    n: int = 0
    k: int = 0
    window: int = 0  # attention: sliding window in tokens (0: full attention)


@dataclass
class Step:
    prompt: int
    level: int
    phase: str
    tokens: int
    past: int
    logits: int
    attention: tuple[tuple[int, int], ...] = ()  #: tree passes: (query tokens, keys attended) per group


class OpRecorder:
    """A :class:`~specsim.workload.speculative.StepObserver` that records operator templates and steps.

    ``models[i]`` is chain level ``i`` (0 = the model producing the output), ``formats[i]`` the
    weight format of its decoder linears and ``lm_head_formats[i]`` its lm_head's (default ``fp16``). Modules shared between levels (an early-exit draft reuses
    the target's layers) are hooked once; observations go to the level of the running step. Hooks
    are attached only while an observed pass runs (see the module docstring).
    """

    def __init__(self, models: list[torch.nn.Module], formats: list[str], lm_head_formats: list[str] | None = None):
        self.formats = formats
        self.lm_head_formats = lm_head_formats or ["fp16"] * len(formats)
        self.templates: dict[int, list[OpSpec]] = {}
        self.steps: list[Step] = []
        self.prompt = 0
        self.observed = 0  #: passes observed through hooks and checked against their template
        self._level_info: dict[int, tuple[int, int]] = {}  # level -> (heads, head_dim)
        self._info: dict[int, _ModuleInfo] = {}
        self._targets: list[tuple[torch.nn.Module, str]] = []  # (module, what to hook it with)
        self._handles = []
        self._kinds: set[tuple] = set()  # kinds of pass already observed
        self._since_check = 0
        self._removed = False
        self._obs: list[tuple] | None = None
        self._step: Step | None = None
        self._pending_attention: tuple | None = None
        for level, model in enumerate(models):
            cfg = model.config
            heads = cfg.num_attention_heads
            self._level_info[level] = (heads, getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
            for name, module in model.named_modules():
                self._register(name, module)

    # -- hooks -------------------------------------------------------------------------------
    def _register(self, name: str, module: torch.nn.Module) -> None:
        if id(module) in self._info:
            return
        match = _LAYER.search(f".{name}.")
        layer = int(match[1]) if match else -1
        short = name.rsplit(".", 1)[-1]
        cls = type(module).__name__
        if isinstance(module, torch.nn.Linear) and (layer >= 0 or short == "lm_head"):
            kind = "lm_head" if short == "lm_head" else "linear"
            info = _ModuleInfo(layer, short, kind, module.out_features, module.in_features)
            self._targets.append((module, "o_proj" if short == "o_proj" else "linear"))
        elif cls.endswith(("RMSNorm", "LayerNorm")) and short in (
            "input_layernorm",
            "post_attention_layernorm",
            "norm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
            "q_norm",
            "k_norm",
        ):
            info = _ModuleInfo(layer, short, "head_norm" if short in ("q_norm", "k_norm") else "norm")
            self._targets.append((module, "vector"))
        elif short == "act_fn" and layer >= 0:
            info = _ModuleInfo(layer, short, "activation")
            self._targets.append((module, "vector"))
        elif short == "self_attn" and layer >= 0:
            info = _ModuleInfo(layer, short, "attention", window=attention_window(module))
            self._targets.append((module, "attention"))
        else:
            return
        self._info[id(module)] = info

    def _attach(self) -> None:
        if self._handles:
            return
        for module, how in self._targets:
            if how == "attention":
                self._handles.append(module.register_forward_pre_hook(self._on_attention, with_kwargs=True))
            elif how == "vector":
                self._handles.append(module.register_forward_hook(self._on_vector))
            else:
                if how == "o_proj":
                    self._handles.append(module.register_forward_pre_hook(self._on_attention_done))
                self._handles.append(module.register_forward_hook(self._on_linear))

    def _detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _on_linear(self, module, args, _out) -> None:
        if self._obs is not None:
            x = args[0]
            self._obs.append((id(module), x.numel() // x.shape[-1], 0))

    def _on_vector(self, module, args, _out) -> None:
        if self._obs is not None:
            x = args[0]
            self._obs.append((id(module), x.numel() // x.shape[-1], x.shape[-1]))

    def _on_attention(self, module, args, kwargs) -> None:
        if self._obs is not None:
            hidden = kwargs.get("hidden_states", args[0] if args else None)
            cache = kwargs.get("cache", kwargs.get("past_key_values"))  # renamed in transformers 5.2x
            past = cache.get_seq_length(module.layer_idx) if cache is not None else 0
            tokens = hidden.shape[1]
            self._pending_attention = (id(module), tokens, past + tokens, _keys_attended(kwargs.get("attention_mask")))

    def _on_attention_done(self, module, args) -> None:
        """o_proj is about to run: the attention proper (QK^T, softmax, PV) has just happened."""
        if self._obs is not None and self._pending_attention is not None:
            self._obs.append(self._pending_attention)
            self._pending_attention = None

    def remove(self) -> None:
        """Detach every hook for good (later passes reported to this recorder are not observed)."""
        self._removed = True
        self._detach()

    # -- steps -------------------------------------------------------------------------------
    def begin_step(
        self, level: int, phase: str, tokens: int, past: int, logits: int, attention: list | None = None
    ) -> None:
        groups = tuple((int(t), int(kv)) for t, kv in attention or ())
        if groups and (sum(t for t, _ in groups) != tokens or any(t < 1 or kv > past + tokens for t, kv in groups)):
            raise SpecsimError(
                f"operand trace: attention groups {list(groups)} do not fit a step of {tokens} tokens after {past}"
            )
        self._step = Step(self.prompt, level, phase, tokens, past, logits, groups)
        kind = (level, phase, tokens > 1, logits > 1)
        self._since_check += 1
        if not self._removed and (
            kind not in self._kinds or level not in self.templates or self._since_check >= CHECK_EVERY
        ):
            self._kinds.add(kind)
            self._since_check = 0
            self._attach()
            self._obs = []
        else:
            self._detach()
            self._obs = None

    def end_step(self) -> None:
        step, obs = self._step, self._obs
        self._obs = self._step = None
        self._pending_attention = None
        if obs is not None:
            ops = self._ops(step, obs)
            template = self.templates.setdefault(step.level, ops)
            if ops != template:
                raise SpecsimError(
                    f"operand trace: level {step.level} ran a different operator sequence "
                    f"in a {step.phase} step (template of {len(template)} ops, got {len(ops)})"
                )
            self.observed += 1
        self.steps.append(step)

    def _ops(self, step: Step, obs: list[tuple]) -> list[OpSpec]:
        """Symbolic operator list of one pass (M and KV replaced by their codes, checked on the way)."""
        heads, head_dim = self._level_info[step.level]
        weight_format = self.formats[step.level]
        ops: list[OpSpec] = []
        kv = step.past + step.tokens
        for key, m, extra, *rest in obs:
            info = self._info[key]
            keys = rest[0] if rest else None
            if info.kind == "lm_head":
                _expect(m == step.logits, step, info, "lm_head rows")
                head_format = self.lm_head_formats[step.level]
                ops.append(OpSpec("gemm", -1, "lm_head", M_LOGITS, info.n, info.k, 1, head_format))
                continue
            _expect(m == step.tokens or info.kind == "head_norm", step, info, "tokens")
            if info.kind == "linear":
                ops.append(OpSpec("gemm", info.layer, info.name, M_TOKENS, info.n, info.k, 1, weight_format))
            elif info.kind in ("norm", "activation"):
                ops.append(OpSpec(info.kind, info.layer, info.name, M_TOKENS, extra, 1))
            elif info.kind == "head_norm":  # [batch, heads, tokens, head_dim]: heads x head_dim per token
                _expect(m * extra % step.tokens == 0, step, info, "per-head rows")
                ops.append(OpSpec("norm", info.layer, info.name, M_TOKENS, m * extra // step.tokens, 1))
            else:  # attention: QK^T over the KV length, softmax, PV
                _expect(extra == kv, step, info, "KV length")
                if keys is not None and not step.attention:  # tree passes attend by their groups instead
                    _expect(keys == int(window_kv(kv, step.tokens, info.window)), step, info, "window of keys")
                ops += attention_ops(info.layer, heads, head_dim, info.window)
        return ops

    # -- output ------------------------------------------------------------------------------
    def arrays(self) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
        """Trace arrays of the templates and steps, plus the op-name and format tables they index."""
        arrays, names, formats = template_arrays(self.templates)
        steps = {
            "step_prompt": [s.prompt for s in self.steps],
            "step_level": [s.level for s in self.steps],
            "step_phase": [PHASES.index(s.phase) for s in self.steps],
            "step_tokens": [s.tokens for s in self.steps],
            "step_past": [s.past for s in self.steps],
            "step_logits": [s.logits for s in self.steps],
        }
        arrays.update({k: np.asarray(v) for k, v in steps.items()})
        return arrays, names, formats

    def attention_arrays(self) -> dict[str, np.ndarray]:
        """The ``attn`` rows of tree passes: step index, query tokens and keys attended of each group."""
        rows = [(i, t, kv) for i, s in enumerate(self.steps) for t, kv in s.attention]
        return {
            name: np.asarray([r[j] for r in rows], dtype=np.int32)
            for j, name in enumerate(("attn_step", "attn_tokens", "attn_kv"))
        }


def _keys_attended(mask) -> int | None:
    """Keys a pass's queries attend together, from a 4D attention mask ``[batch, 1, queries, keys]`` (boolean:
    True = attended; float: 0 = attended); None when the attention gets no such mask (a causal kernel)."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4:
        return None
    allowed = mask[0, 0] if mask.dtype == torch.bool else mask[0, 0] == 0
    return int(allowed.any(dim=0).sum())


def _expect(ok: bool, step: Step, info: _ModuleInfo, what: str) -> None:
    if not ok:
        raise SpecsimError(
            f"operand trace: {info.name} of layer {info.layer} saw an unexpected {what} "
            f"in a level-{step.level} {step.phase} step of {step.tokens} tokens"
        )
