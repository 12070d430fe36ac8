"""Operator templates: the operators one forward pass of a decoder-only LM runs, with symbolic M and KV length.

Used on both sides of the trace: the operand recorder (:mod:`specsim.workload.optrace`) builds a
template per chain level from forward hooks on a real model, and :func:`architecture_template`
derives the same template from an architecture's shape alone (for models too large to run). This
module imports only numpy, so the hardware side can use it.

Work of an operator in a step = ``M x N x K x count`` (MACs for GEMMs, elements for vector ops);
``m`` is :data:`M_TOKENS` (the step's tokens) or :data:`M_LOGITS` (rows through lm_head), and ``n``
or ``k`` equal to :data:`DIM_KV` mean the step's KV length (cached + new tokens).

Sliding-window attention: an attention operator with ``window`` w > 0 lets each query attend itself and
the w - 1 keys before it, so a step of T new tokens after P cached ones touches the last
``min(P + T, w + T - 1)`` KV entries (:func:`window_kv`) instead of P + T; ``window`` 0 is full attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.trace.tracefile import OP_KINDS

M_TOKENS, M_LOGITS, DIM_KV = -1, -2, -1


@dataclass(frozen=True)
class OpSpec:
    """One operator of a template."""

    kind: str  #: one of :data:`~specsim.trace.tracefile.OP_KINDS`
    layer: int  #: decoder layer, -1 for the final norm and lm_head
    name: str  #: q_proj, ..., lm_head, attn_qk, softmax, input_layernorm, act_fn, ...
    m: int  #: M_TOKENS or M_LOGITS
    n: int
    k: int
    count: int = 1  #: batched GEMMs (attention heads) or 1
    weight_format: str | None = None  #: format of the stationary weight operand (None: activations only)
    window: int = 0  #: attention operators: sliding window in tokens (0: full attention); others 0


def window_kv(kv, tokens, window):
    """KV entries a step attends: ``kv`` (= cached + new tokens) for full attention (``window`` 0), else the
    ``min(kv, window + tokens - 1)`` the step's ``tokens`` queries see together (each query sees the
    ``window`` keys ending at itself). Works on ints and numpy arrays alike."""
    return np.where(np.asarray(window) > 0, np.minimum(kv, np.asarray(window) + tokens - 1), kv)


def attention_ops(layer: int, heads: int, head_dim: int, window: int = 0) -> list[OpSpec]:
    """QK^T over the KV length, softmax, and PV, for every head; ``window``: sliding window (0: full)."""
    return [
        OpSpec("attn_qk", layer, "attn_qk", M_TOKENS, DIM_KV, head_dim, heads, window=window),
        OpSpec("softmax", layer, "softmax", M_TOKENS, DIM_KV, 1, heads, window=window),
        OpSpec("attn_pv", layer, "attn_pv", M_TOKENS, head_dim, DIM_KV, heads, window=window),
    ]


def architecture_template(arch, weight_format: str, lm_head_format: str = "fp16") -> list[OpSpec]:
    """The operator template of one forward pass of ``arch`` (an :class:`~specsim.trace.architectures.Architecture`)
    whose decoder linears hold ``weight_format`` weights and lm_head ``lm_head_format`` ones. Same order and
    names as the hooked template of a Hugging Face model of the family (Llama, OPT, Gemma 3); attention
    operators carry the layer's window (:meth:`~specsim.trace.architectures.Architecture.window`)."""
    h, hd, ffn = arch.hidden, arch.head_dim, arch.ffn
    q, kv = arch.heads * hd, arch.kv_heads * hd
    gemma = arch.family == "gemma3"
    ops: list[OpSpec] = []
    for layer in range(arch.layers):

        def gemm(name, n, k, layer=layer):
            return OpSpec("gemm", layer, name, M_TOKENS, n, k, 1, weight_format)

        def vector(kind, name, n, layer=layer):
            return OpSpec(kind, layer, name, M_TOKENS, n, 1)

        ops += [
            vector("norm", "input_layernorm", h),
            gemm("q_proj", q, h),
            gemm("k_proj", kv, h),
            gemm("v_proj", kv, h),
            # Gemma 3: RMSNorm of every query and key head (an RMSNorm over head_dim, heads x head_dim elements)
            *([vector("norm", "q_norm", q), vector("norm", "k_norm", kv)] if gemma else []),
            *attention_ops(layer, arch.heads, hd, arch.window(layer)),
            gemm("o_proj", h, q),
            vector("norm", "post_attention_layernorm", h),
            *([vector("norm", "pre_feedforward_layernorm", h)] if gemma else []),
        ]
        if arch.family == "opt":  # ReLU MLP without a gate
            ops += [gemm("fc1", ffn, h), vector("activation", "act_fn", ffn), gemm("fc2", h, ffn)]
        else:  # gated MLP (SwiGLU; Gemma 3: GELU-tanh)
            ops += [
                gemm("gate_proj", ffn, h),
                vector("activation", "act_fn", ffn),
                gemm("up_proj", ffn, h),
                gemm("down_proj", h, ffn),
            ]
        if gemma:
            ops.append(vector("norm", "post_feedforward_layernorm", h))
    ops += [
        OpSpec("norm", -1, "norm", M_TOKENS, h, 1),
        OpSpec("gemm", -1, "lm_head", M_LOGITS, arch.vocab, h, 1, lm_head_format),
    ]
    return ops


def template_arrays(templates: dict[int, list[OpSpec]]) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Trace ``op_*`` arrays of per-level templates, plus the op-name and format tables they index."""
    names: list[str] = []
    formats: list[str] = []

    def index(table: list[str], value: str | None) -> int:
        if value is None:
            return -1
        if value not in table:
            table.append(value)
        return table.index(value)

    rows = [(level, op) for level in sorted(templates) for op in templates[level]]
    arrays = {
        "op_level": [lv for lv, _ in rows],
        "op_kind": [OP_KINDS.index(op.kind) for _, op in rows],
        "op_layer": [op.layer for _, op in rows],
        "op_name": [index(names, op.name) for _, op in rows],
        "op_m": [op.m for _, op in rows],
        "op_n": [op.n for _, op in rows],
        "op_k": [op.k for _, op in rows],
        "op_count": [op.count for _, op in rows],
        "op_weight_format": [index(formats, op.weight_format) for _, op in rows],
        "op_window": [op.window for _, op in rows],
    }
    return {k: np.asarray(v) for k, v in arrays.items()}, names, formats
