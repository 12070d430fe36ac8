"""From a trace's operator templates and forward passes to the hardware's operator table (numpy only).

A trace stores, per chain level, an operator template with symbolic token count and KV length
(``op_*`` arrays) and one row per forward pass (``step_*``: level, tokens, cached length, lm_head
rows); see :mod:`specsim.trace.tracefile`. :func:`level_templates` turns each level's template into
hardware operators once (PE mode of each GEMM, KV-cache write-backs, then the accelerator method's
extras through :class:`LevelOps`, see :mod:`specsim.methods`);
:func:`steps_table` then instantiates any run of passes in one vectorised step, so a whole generation
becomes one :class:`~specsim.hardware.ops.OpTable` for the engine.

Sliding-window attention: a template row with ``op_window`` w > 0 (QK^T, softmax, PV of a windowed layer)
attends, in a pass of T new tokens after P cached ones, the last ``min(P + T, w + T - 1)`` KV entries
(:func:`~specsim.trace.operators.window_kv`; each query sees the w keys ending at itself), so its KV length,
its KV-cache reads and its work are those of that span. The row's ``window`` column keeps w, and the
layer's ``k_proj``/``v_proj`` rows get it too (the KV cache that layer keeps, :mod:`specsim.results.capacity`).

Mode rule: a GEMM whose weights are FP16 values (lm_head by default, and every linear of an FP16
model) runs in the ``fp16_mode`` (``fp16``, or a mode that reads FP16 values from another storage, e.g.
SPEQ's ``bsfp16``: BSFP words plus per-block metadata); a non-FP16 lm_head of level ``l`` runs in ``lm_head_modes[l]``; the other
GEMMs of level ``l`` run in ``level_modes[l]``; attention runs in ``attention_mode``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from specsim.errors import SpecsimError
from specsim.hardware.config import VECTOR_OPS
from specsim.hardware.ops import COLUMNS, EXTRA_COLUMNS, KIND_GEMM, KIND_KV_GEMM, KIND_VECTOR, OpTable
from specsim.trace.operators import window_kv
from specsim.trace.tracefile import OP_KINDS, Trace

M_TOKENS, M_LOGITS, DIM_KV = -1, -2, -1  # symbolic dims of trace templates (see trace.operators)
_T_GEMM, _T_QK, _T_PV, _T_SOFTMAX, _T_NORM = (
    OP_KINDS.index(k) for k in ("gemm", "attn_qk", "attn_pv", "softmax", "norm")
)
KV_WRITERS = ("k_proj", "v_proj")  #: their outputs are appended to the KV cache in DRAM


@dataclass
class LevelTemplate:
    """One level's operators as hardware rows with symbolic dims (``m``: M_TOKENS/M_LOGITS, ``n``/``k``: DIM_KV)."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["kind"])


@dataclass(frozen=True)
class LevelOps:
    """One chain level's operators on their way to the hardware, with what a method's lowering reads.

    ``columns`` are operator-table columns (:data:`~specsim.hardware.ops.COLUMNS`) with symbolic dims;
    the other arrays have one entry per row. Methods return a new :class:`LevelOps` (see
    :mod:`specsim.methods.base`) through :meth:`with_columns` and :meth:`with_vector_pass_after`.
    """

    columns: dict[str, np.ndarray]
    level: int  #: chain level (0 = the model whose output is produced)
    quantized: np.ndarray  #: bool: GEMMs whose weights are not stored FP16
    layers: np.ndarray  #: decoder layer of each row
    linears: np.ndarray  #: short name of each row's operator (q_proj, ..., lm_head)
    trace: Trace  #: the trace (header, layer statistics)

    def with_columns(self, **columns: np.ndarray) -> LevelOps:
        """A copy with some columns replaced (arrays of one value per row)."""
        return replace(self, columns={**self.columns, **columns})

    def add_cycles(self, column: str, cycles: np.ndarray) -> LevelOps:
        """A copy with ``cycles`` (one value per row, cycles) added to extra column ``column``
        (``extra_cycles`` or ``extra_cycles_per_output_tile``)."""
        if column not in EXTRA_COLUMNS:
            raise ValueError(f"{column} is not one of the extra columns {EXTRA_COLUMNS}")
        return self.with_columns(**{column: self.columns[column] + np.asarray(cycles, dtype=np.int64)})

    def with_vector_pass_after(self, rows: np.ndarray, vector_op: str) -> LevelOps:
        """A copy with one vector-unit pass of kind ``vector_op`` over the output of each row in ``rows``
        (bool mask), placed right after it (e.g. a requantization after every quantized GEMM)."""
        picked = np.flatnonzero(rows)
        extra = {k: v[picked].copy() for k, v in self.columns.items()}
        extra.update(
            kind=np.full(picked.size, KIND_VECTOR, extra["kind"].dtype),
            vector_op=np.full(picked.size, VECTOR_OPS.index(vector_op), extra["vector_op"].dtype),
            k=np.ones(picked.size, extra["k"].dtype),
            output_resident=np.ones(picked.size, bool),
        )
        for name, (dtype, default) in COLUMNS.items():
            if name in EXTRA_COLUMNS:
                extra[name] = np.full(picked.size, default, dtype)
        position = np.concatenate([np.arange(len(self.layers)), picked]).argsort(kind="stable")
        merged = {k: np.concatenate([v, extra[k]])[position] for k, v in self.columns.items()}
        per_row = {
            name: np.concatenate([getattr(self, name), getattr(self, name)[picked]])[position]
            for name in ("layers", "linears")
        }
        return replace(
            self,
            columns=merged,
            quantized=np.concatenate([self.quantized, np.zeros(picked.size, bool)])[position],
            **per_row,
        )

    def layer_stat(self, name: str) -> dict[tuple[int, str], float]:
        """A layer statistic of the trace (``ls_<...>`` arrays) by (decoder layer, linear short name); empty
        when the trace measured none (shape workloads, ``--no-layer-stats``)."""
        values = self.trace[name]
        if values.size == 0:
            return {}
        names = self.trace.header.get("layer_names")
        if names is None:
            raise SpecsimError(
                f"{self.trace.path}: trace has layer statistics but no 'layer_names' header table "
                "(made by an older specsim); regenerate it with traces/make_default_traces.sh"
            )
        return {
            (int(lay), names[int(nm)]): float(v)
            for lay, nm, v in zip(self.trace["ls_layer"], self.trace["ls_name"], values)
        }


def _base_columns(kind_t: np.ndarray, m, n, k, count, kv_streams: int | None, window=0) -> dict[str, np.ndarray]:
    """Hardware columns of template rows: kind, dims, heads, KV streams, vector-unit op, attention window."""
    cols = {key: np.full(len(kind_t), d, dtype=t) for key, (t, d) in COLUMNS.items()}
    cols["window"][:] = window
    gemm = kind_t == _T_GEMM
    kv = (kind_t == _T_QK) | (kind_t == _T_PV)
    cols["kind"][:] = np.select([gemm, kv], [KIND_GEMM, KIND_KV_GEMM], KIND_VECTOR)
    cols["m"][:], cols["n"][:], cols["k"][:], cols["batch"][:] = m, n, k, count
    cols["streams"][:] = cols["batch"] if kv_streams is None else np.minimum(cols["batch"], kv_streams)
    cols["vector_op"][:] = np.select(
        [kind_t == _T_SOFTMAX, kind_t == _T_NORM],
        [VECTOR_OPS.index("softmax"), VECTOR_OPS.index("norm")],
        VECTOR_OPS.index("activation"),
    )
    return cols


#: a method's lowering: one level's operators in, the same level with its extras out
Lowering = Callable[[LevelOps], LevelOps]


def level_templates(
    trace: Trace,
    level_modes: list[str],
    modes: tuple[str, ...],
    *,
    attention_mode: str = "fp16",
    lower: Lowering | None = None,
    kv_streams: int | None = None,
    lm_head_modes: list[str | None] | None = None,
    fp16_mode: str | None = None,
) -> list[LevelTemplate]:
    """Hardware templates of every level of ``trace``; PE modes by the module docstring's rule (the
    modes are checked when the run config loads; ``lm_head_modes[l]`` ``None`` or absent: the level's
    mode; ``fp16_mode`` None: ``fp16``, or the target's mode if the hardware has no ``fp16``), then the
    method's ``lower`` applied to each level."""
    formats = trace.header["formats"]
    fp16 = formats.index("fp16") if "fp16" in formats else -2
    names = np.asarray(trace.header["op_names"])
    if fp16_mode is None:
        fp16_mode = "fp16" if "fp16" in modes else level_modes[0]
    fp16_mode = modes.index(fp16_mode)
    out = []
    for level in range(len(trace.header["levels"])):
        sel = trace["op_level"] == level
        kind_t = trace["op_kind"][sel].astype(np.int64)
        cols = _base_columns(
            kind_t,
            trace["op_m"][sel],
            trace["op_n"][sel],
            trace["op_k"][sel],
            trace["op_count"][sel],
            kv_streams,
            trace["op_window"][sel],
        )
        kv = (kind_t == _T_QK) | (kind_t == _T_PV)
        fmt = trace["op_weight_format"][sel]
        linears = names[trace["op_name"][sel]]
        head_mode = (lm_head_modes[level] if lm_head_modes and level < len(lm_head_modes) else None) or level_modes[
            level
        ]
        weight_mode = np.where(linears == "lm_head", modes.index(head_mode), modes.index(level_modes[level]))
        cols["mode"][:] = np.where(kv, modes.index(attention_mode), np.where(fmt == fp16, fp16_mode, weight_mode))
        writers = np.isin(linears, KV_WRITERS)
        cols["output_resident"][:] = ~writers
        layer = trace["op_layer"][sel].astype(np.int64)
        windowed = cols["window"] > 0
        if windowed.any():  # a KV writer keeps its layer's window of the cache
            per_layer = dict(zip(layer[windowed].tolist(), cols["window"][windowed].tolist()))
            cols["window"][writers] = [per_layer.get(lay, 0) for lay in layer[writers].tolist()]
        ops = LevelOps(cols, level, (kind_t == _T_GEMM) & (fmt != fp16), trace["op_layer"][sel], linears, trace)
        out.append(LevelTemplate((lower(ops) if lower else ops).columns))
    return out


def steps_table(
    templates: list[LevelTemplate],
    modes: tuple[str, ...],
    levels: np.ndarray,
    tokens: np.ndarray,
    past: np.ndarray,
    logits: np.ndarray,
) -> tuple[OpTable, np.ndarray]:
    """One operator table for a run of forward passes (vectorised); also each pass's first row index.

    Pass ``s`` runs level ``levels[s]`` over ``tokens[s]`` new tokens after ``past[s]`` cached ones,
    with ``logits[s]`` rows through lm_head (one sequence per pass: :func:`batched_steps_table`).
    """
    levels = np.asarray(levels, dtype=np.int64)
    one_each = np.arange(len(levels), dtype=np.int64)
    return batched_steps_table(templates, modes, levels, one_each, tokens, past, logits)


def per_sequence_rows(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Rows that run once per sequence of a batched pass: those over the KV length (QK^T, softmax, PV and
    any vector pass a method placed after them). Every other row runs once over all the pass's tokens."""
    return (columns["n"] == DIM_KV) | (columns["k"] == DIM_KV)


def batched_steps_table(
    templates: list[LevelTemplate],
    modes: tuple[str, ...],
    pass_levels: np.ndarray,
    member_pass: np.ndarray,
    tokens: np.ndarray,
    past: np.ndarray,
    logits: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[OpTable, np.ndarray]:
    """One operator table for a run of batched forward passes (vectorised); also each pass's first row.

    Pass ``s`` runs level ``pass_levels[s]`` for the sequences ``i`` with ``member_pass[i] == s``
    (non-decreasing: a pass's members are contiguous), sequence ``i`` over ``tokens[i]`` new tokens after
    ``past[i]`` cached ones with ``logits[i]`` rows through lm_head (a windowed row attends
    ``min(kv, window + tokens - 1)`` keys of a group's ``kv``: the module docstring). Weight GEMMs and their vector ops run
    once with M = the members' tokens (or lm_head rows) summed; rows over the KV length
    (:func:`per_sequence_rows`) run once per attention group, in member order: by default one group per
    member (its tokens over its past + tokens); ``groups`` ``(member, tokens, kv)`` (member
    non-decreasing) splits a member's tokens into groups that attend to ``kv`` keys each, as the tree
    mask of a token-tree pass does (the nodes of depth d see the context and their d ancestors).
    With one member per pass and no groups this is the unbatched table, row for row.
    """
    lengths = np.array([len(t) for t in templates], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    stacked = {k: np.concatenate([t.columns[k] for t in templates]) for k in COLUMNS}
    per_seq = per_sequence_rows(stacked)
    levels = np.asarray(pass_levels, dtype=np.int64)
    member_pass = np.asarray(member_pass, dtype=np.int64)
    t_all, p_all, lg_all = (np.asarray(a, dtype=np.int64) for a in (tokens, past, logits))
    if groups is None:
        g_member, g_tokens, g_kv = np.arange(member_pass.size), t_all, p_all + t_all
    else:
        g_member, g_tokens, g_kv = (np.asarray(a, dtype=np.int64) for a in groups)
    g_pass = member_pass[g_member]
    groups_per_pass = np.bincount(g_pass, minlength=len(levels))
    first_group = np.concatenate([[0], np.cumsum(groups_per_pass)[:-1]])
    # (pass, template row) pairs, then per-sequence rows repeated once per attention group
    per_step = lengths[levels]
    step_starts = np.concatenate([[0], np.cumsum(per_step)[:-1]])
    step_of_pair = np.repeat(np.arange(len(levels)), per_step)
    pair_rows = offsets[levels][step_of_pair] + (np.arange(per_step.sum()) - step_starts[step_of_pair])
    repeat = np.where(per_seq[pair_rows], groups_per_pass[step_of_pair], 1)
    rows = np.repeat(pair_rows, repeat)
    step_of_row = np.repeat(step_of_pair, repeat)
    copy = np.arange(repeat.sum()) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    group = first_group[step_of_row] + copy  # the group of a per-sequence row (unused for shared rows)
    pass_tokens = np.bincount(member_pass, weights=t_all, minlength=len(levels)).astype(np.int64)
    pass_logits = np.bincount(member_pass, weights=lg_all, minlength=len(levels)).astype(np.int64)
    seq = per_seq[rows]
    group = np.where(seq, group, 0)
    t = np.where(seq, g_tokens[group] if g_tokens.size else 0, pass_tokens[step_of_row])
    lg = pass_logits[step_of_row]
    kv = np.where(seq, g_kv[group] if g_kv.size else 0, 0)
    cols = {k: v[rows] for k, v in stacked.items()}
    kv = np.where(seq, window_kv(kv, t, cols["window"]), kv)  # a windowed layer attends its window's span
    m = cols["m"]
    cols["m"] = np.where(m == M_LOGITS, lg, np.where(m == M_TOKENS, t, m))
    cols["n"] = np.where(cols["n"] == DIM_KV, kv, cols["n"])
    cols["k"] = np.where(cols["k"] == DIM_KV, kv, cols["k"])
    starts = np.concatenate([[0], np.cumsum(np.bincount(step_of_row, minlength=len(levels)))[:-1]])
    keep = cols["m"] > 0  # a pass with no lm_head rows skips lm_head
    if not keep.all():
        cols = {k: v[keep] for k, v in cols.items()}
        starts = np.searchsorted(np.flatnonzero(keep), starts)
    return OpTable(tuple(modes), cols, []), starts


def step_table(
    template: dict[str, np.ndarray],
    formats: list[str],
    format_modes: dict[str, str],
    modes: tuple[str, ...],
    tokens: int,
    kv_len: int,
    logits_rows: int | None = None,
    kv_streams: int | None = None,
    attention_mode: str = "fp16",
) -> OpTable:
    """One forward pass of a raw ``op_*`` template with a mode per weight format (for shape studies)."""
    kind_t = template["op_kind"]
    fmt = template["op_weight_format"]
    for f in formats:
        if format_modes.get(f) not in modes:
            raise SpecsimError(f"no PE mode configured for weight format {f!r} (have {format_modes})")
    lookup = np.asarray([modes.index(format_modes[f]) for f in formats] + [modes.index(attention_mode)])
    window = template.get("op_window", 0)
    cols = _base_columns(
        kind_t, template["op_m"], template["op_n"], template["op_k"], template["op_count"], kv_streams, window
    )
    kv = (kind_t == _T_QK) | (kind_t == _T_PV)
    cols["mode"][:] = lookup[np.where(kv | (fmt < 0), len(formats), fmt)]
    table, _ = steps_table(
        [LevelTemplate(cols)],
        modes,
        np.zeros(1, np.int64),
        np.array([tokens]),
        np.array([kv_len - tokens]),
        np.array([tokens if logits_rows is None else logits_rows]),
    )
    return table
