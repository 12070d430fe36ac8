"""From a trace's operator template to the hardware's operator table for one step (numpy only).

A trace stores, per chain level, an operator template with symbolic token count and KV length
(``op_*`` arrays, see :mod:`specsim.workload.tracefile`); a step fixes them. This module turns one
level's template plus (tokens, KV length, lm_head rows) into an :class:`~specsim.hardware.ops.OpTable`,
vectorised so a 7B-model step builds in well under a millisecond.
"""

from __future__ import annotations

import numpy as np

from specsim.errors import SpecsimError
from specsim.hardware.config import VECTOR_OPS
from specsim.hardware.ops import _COLUMNS, KIND_GEMM, KIND_KV_GEMM, KIND_VECTOR, OpTable
from specsim.workload.tracefile import OP_KINDS

M_TOKENS, M_LOGITS, DIM_KV = -1, -2, -1   # symbolic dims of trace templates (see workload.operators)
_T_GEMM, _T_QK, _T_PV, _T_SOFTMAX, _T_NORM, _T_ACT = (OP_KINDS.index(k) for k in
                                                     ("gemm", "attn_qk", "attn_pv", "softmax", "norm", "activation"))


def step_table(template: dict[str, np.ndarray], formats: list[str], format_modes: dict[str, str],
               modes: tuple[str, ...], tokens: int, kv_len: int, logits_rows: int | None = None,
               kv_streams: int | None = None, attention_mode: str = "fp16") -> OpTable:
    """Operator table of one forward pass over ``tokens`` new tokens with ``kv_len`` KV entries.

    ``template``: ``op_kind, op_m, op_n, op_k, op_count, op_weight_format`` arrays of one level;
    ``format_modes`` maps each weight format name to the PE mode that runs it; attention runs in
    ``attention_mode``; ``kv_streams`` is the number of KV heads (default: one per attention head).
    """
    kind_t = template["op_kind"]
    n_ops = len(kind_t)
    cols = {k: np.full(n_ops, d, dtype=t) for k, (t, d) in _COLUMNS.items()}
    logits_rows = tokens if logits_rows is None else logits_rows
    m = np.where(template["op_m"] == M_LOGITS, logits_rows, np.where(template["op_m"] == M_TOKENS, tokens,
                                                                       template["op_m"]))
    n = np.where(template["op_n"] == DIM_KV, kv_len, template["op_n"])
    k = np.where(template["op_k"] == DIM_KV, kv_len, template["op_k"])
    count = template["op_count"]
    cols["kind"][:] = np.select([kind_t == _T_GEMM, (kind_t == _T_QK) | (kind_t == _T_PV)],
                                [KIND_GEMM, KIND_KV_GEMM], KIND_VECTOR)
    cols["m"][:], cols["n"][:], cols["k"][:], cols["batch"][:] = m, n, k, count
    cols["streams"][:] = count if kv_streams is None else np.minimum(count, kv_streams)
    mode_of_format = []
    for f in formats:
        if f not in format_modes:
            raise SpecsimError(f"no PE mode is configured for weight format {f!r} "
                               f"(known: {', '.join(format_modes) or 'none'})")
        if format_modes[f] not in modes:
            raise SpecsimError(f"PE mode {format_modes[f]!r} for format {f!r} is not one of {', '.join(modes)}")
        mode_of_format.append(modes.index(format_modes[f]))
    fmt = template["op_weight_format"]
    lookup = np.asarray(mode_of_format + [modes.index(attention_mode)], dtype=np.int16)
    cols["mode"][:] = lookup[np.where(fmt >= 0, fmt, len(mode_of_format))]
    cols["vector_op"][:] = np.select([kind_t == _T_SOFTMAX, kind_t == _T_NORM], [VECTOR_OPS.index("softmax"),
                                     VECTOR_OPS.index("norm")], VECTOR_OPS.index("activation"))
    table = OpTable(tuple(modes), cols, [])
    return table
