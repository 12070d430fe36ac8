"""From a trace's operator templates and forward passes to the hardware's operator table (numpy only).

A trace stores, per chain level, an operator template with symbolic token count and KV length
(``op_*`` arrays) and one row per forward pass (``step_*``: level, tokens, cached length, lm_head
rows); see :mod:`specsim.trace.tracefile`. :func:`level_templates` turns each level's template into
hardware operators once (PE mode of each GEMM, KV-cache write-backs, OliVe/Tender extras);
:func:`steps_table` then instantiates any run of passes in one vectorised step, so a whole generation
becomes one :class:`~specsim.hardware.ops.OpTable` for the engine.

Mode rule: a GEMM whose weights are stored ``fp16`` (lm_head, and every linear of an FP16 model) runs
in ``fp16`` mode; the other GEMMs of level ``l`` run in ``level_modes[l]``; attention runs in
``attention_mode``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.errors import SpecsimError
from specsim.hardware.config import VECTOR_OPS
from specsim.hardware.ops import _COLUMNS, KIND_GEMM, KIND_KV_GEMM, KIND_VECTOR, OpTable
from specsim.trace.tracefile import OP_KINDS

M_TOKENS, M_LOGITS, DIM_KV = -1, -2, -1   # symbolic dims of trace templates (see workload.operators)
_T_GEMM, _T_QK, _T_PV, _T_SOFTMAX, _T_NORM = (OP_KINDS.index(k) for k in
                                             ("gemm", "attn_qk", "attn_pv", "softmax", "norm"))
KV_WRITERS = ("k_proj", "v_proj")   #: their outputs are appended to the KV cache in DRAM


@dataclass(frozen=True)
class OpOptions:
    """Accelerator-specific treatment of the operators (all off: a plain FP16/quarter array)."""

    olive: bool = False            #: OliVe edge decoders on every GEMM
    tender_groups: bool = False    #: Tender's per-group accumulator shift, G per layer from the trace
    default_groups: int = 1        #: G where the trace measured none (shape workloads)
    requant: bool = False          #: a vector-unit requantization after every GEMM (Tender)
    attention_mode: str = "fp16"


@dataclass
class LevelTemplate:
    """One level's operators as hardware rows with symbolic dims (``m``: M_TOKENS/M_LOGITS, ``n``/``k``: DIM_KV)."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["kind"])


def _level_modes_of(trace, level_modes: list[str], modes: tuple[str, ...], path: str) -> list[int]:
    levels = trace.header["levels"]
    if len(level_modes) < len(levels):
        raise SpecsimError(f"{path}: level_modes lists {len(level_modes)} mode(s) but trace {trace.path} has "
                           f"{len(levels)} levels ({', '.join(levels)})")
    for mode in level_modes:
        if mode not in modes:
            raise SpecsimError(f"{path}: level_modes: PE mode {mode!r} is not one of {', '.join(modes)}")
    return [modes.index(m) for m in level_modes]


def _base_columns(kind_t: np.ndarray, m, n, k, count, kv_streams: int | None) -> dict[str, np.ndarray]:
    """Hardware columns of template rows: kind, dims, heads, KV streams, vector-unit op."""
    cols = {key: np.full(len(kind_t), d, dtype=t) for key, (t, d) in _COLUMNS.items()}
    gemm = kind_t == _T_GEMM
    kv = (kind_t == _T_QK) | (kind_t == _T_PV)
    cols["kind"][:] = np.select([gemm, kv], [KIND_GEMM, KIND_KV_GEMM], KIND_VECTOR)
    cols["m"][:], cols["n"][:], cols["k"][:], cols["batch"][:] = m, n, k, count
    cols["streams"][:] = cols["batch"] if kv_streams is None else np.minimum(cols["batch"], kv_streams)
    cols["vector_op"][:] = np.select([kind_t == _T_SOFTMAX, kind_t == _T_NORM],
                                     [VECTOR_OPS.index("softmax"), VECTOR_OPS.index("norm")],
                                     VECTOR_OPS.index("activation"))
    return cols


def level_templates(trace, level_modes: list[str], modes: tuple[str, ...], options: OpOptions = OpOptions(),
                    kv_streams: int | None = None, config_path: str = "config") -> list[LevelTemplate]:
    """Hardware templates of every level of ``trace`` (a :class:`~specsim.trace.tracefile.Trace`)."""
    mode_idx = _level_modes_of(trace, level_modes, modes, config_path)
    if options.attention_mode not in modes:
        raise SpecsimError(f"{config_path}: attention mode {options.attention_mode!r} is not one of {', '.join(modes)}")
    formats = trace.header["formats"]
    names = trace.header["op_names"]
    fp16 = formats.index("fp16") if "fp16" in formats else -2
    groups_of = _tender_groups(trace) if options.tender_groups else {}
    default_g = options.default_groups if options.tender_groups else 1
    out = []
    for level in range(len(trace.header["levels"])):
        sel = trace["op_level"] == level
        kind_t = trace["op_kind"][sel].astype(np.int64)
        n_ops = int(sel.sum())
        cols = _base_columns(kind_t, trace["op_m"][sel], trace["op_n"][sel], trace["op_k"][sel],
                             trace["op_count"][sel], kv_streams)
        gemm = kind_t == _T_GEMM
        kv = (kind_t == _T_QK) | (kind_t == _T_PV)
        fmt = trace["op_weight_format"][sel]
        cols["mode"][:] = np.where(kv, modes.index(options.attention_mode),
                                   np.where(fmt == fp16, modes.index("fp16") if "fp16" in modes else mode_idx[0],
                                            mode_idx[level]))
        op_names = np.asarray(names)[trace["op_name"][sel]]
        cols["output_resident"][:] = ~np.isin(op_names, KV_WRITERS)
        if options.olive:
            cols["olive"][:] = gemm & (fmt != fp16)
        if groups_of or default_g > 1:
            layers = trace["op_layer"][sel]
            cols["groups"][:] = [groups_of.get((int(lay), str(nm)), default_g) if g else 1
                                 for lay, nm, g in zip(layers, op_names, gemm & (fmt != fp16))]
        if options.requant:                      # a requantization pass over each quantized GEMM's output
            order = np.arange(n_ops)
            quantized = np.flatnonzero(gemm & (fmt != fp16))
            req = {k: v[quantized].copy() for k, v in cols.items()}
            req["kind"][:] = KIND_VECTOR
            req["vector_op"][:] = VECTOR_OPS.index("requant")
            req["k"][:] = 1
            req["output_resident"][:] = True
            req["olive"][:] = False
            req["groups"][:] = 1
            position = np.concatenate([order, quantized]).argsort(kind="stable")
            cols = {k: np.concatenate([v, req[k]])[position] for k, v in cols.items()}
        out.append(LevelTemplate(cols))
    return out


def _tender_groups(trace) -> dict[tuple[int, str], int]:
    """Tender channel groups per (layer, linear) measured in the trace (``ls_tender_groups``)."""
    if trace["tender_groups"].size == 0:
        return {}
    names = trace.header.get("layer_names")
    if names is None:
        raise SpecsimError(f"{trace.path}: trace has layer statistics but no 'layer_names' header table "
                           "(made by an older specsim); regenerate it with traces/make_default_traces.sh")
    return {(int(lay), names[int(nm)]): max(1, int(round(g))) for lay, nm, g in
            zip(trace["ls_layer"], trace["ls_name"], trace["tender_groups"])}


def steps_table(templates: list[LevelTemplate], modes: tuple[str, ...], levels: np.ndarray, tokens: np.ndarray,
                past: np.ndarray, logits: np.ndarray) -> tuple[OpTable, np.ndarray]:
    """One operator table for a run of forward passes (vectorised); also each pass's first row index.

    Pass ``s`` runs level ``levels[s]`` over ``tokens[s]`` new tokens after ``past[s]`` cached ones,
    with ``logits[s]`` rows through lm_head.
    """
    lengths = np.array([len(t) for t in templates], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    stacked = {k: np.concatenate([t.columns[k] for t in templates]) for k in _COLUMNS}
    levels = np.asarray(levels, dtype=np.int64)
    per_step = lengths[levels]
    starts = np.concatenate([[0], np.cumsum(per_step)[:-1]])
    step_of_row = np.repeat(np.arange(len(levels)), per_step)
    rows = offsets[levels][step_of_row] + (np.arange(per_step.sum()) - starts[step_of_row])
    cols = {k: v[rows] for k, v in stacked.items()}
    t = np.asarray(tokens, dtype=np.int64)[step_of_row]
    kv = (np.asarray(past, dtype=np.int64) + np.asarray(tokens, dtype=np.int64))[step_of_row]
    lg = np.asarray(logits, dtype=np.int64)[step_of_row]
    m = cols["m"]
    cols["m"] = np.where(m == M_LOGITS, lg, np.where(m == M_TOKENS, t, m))
    cols["n"] = np.where(cols["n"] == DIM_KV, kv, cols["n"])
    cols["k"] = np.where(cols["k"] == DIM_KV, kv, cols["k"])
    keep = cols["m"] > 0                       # a pass with no lm_head rows skips lm_head
    if not keep.all():
        cols = {k: v[keep] for k, v in cols.items()}
        starts = np.searchsorted(np.flatnonzero(keep), starts)
    return OpTable(tuple(modes), cols, []), starts


def step_table(template: dict[str, np.ndarray], formats: list[str], format_modes: dict[str, str],
               modes: tuple[str, ...], tokens: int, kv_len: int, logits_rows: int | None = None,
               kv_streams: int | None = None, attention_mode: str = "fp16") -> OpTable:
    """One forward pass of a raw ``op_*`` template with a mode per weight format (for shape studies)."""
    kind_t = template["op_kind"]
    fmt = template["op_weight_format"]
    for f in formats:
        if format_modes.get(f) not in modes:
            raise SpecsimError(f"no PE mode configured for weight format {f!r} (have {format_modes})")
    lookup = np.asarray([modes.index(format_modes[f]) for f in formats] + [modes.index(attention_mode)])
    cols = _base_columns(kind_t, template["op_m"], template["op_n"], template["op_k"], template["op_count"],
                         kv_streams)
    kv = (kind_t == _T_QK) | (kind_t == _T_PV)
    cols["mode"][:] = lookup[np.where(kv | (fmt < 0), len(formats), fmt)]
    table, _ = steps_table([LevelTemplate(cols)], modes, np.zeros(1, np.int64), np.array([tokens]),
                           np.array([kv_len - tokens]), np.array([tokens if logits_rows is None else logits_rows]))
    return table
