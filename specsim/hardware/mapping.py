"""Tiling and mapping: each operator onto the PE array, the vector unit and the memory levels.

Vectorised over an :class:`~specsim.hardware.ops.OpTable` (numpy, no per-op Python loop), so a
whole decode step of a 7B model maps in well under a millisecond.

GEMM on the array. A mode with ``lanes`` MACs per PE widens the *logical* array along its
``lane_dim`` (``k``: R x lanes rows; ``n``: C x lanes columns). Each dataflow places two GEMM
dims on the array and streams the third through it in time::

    ws: rows <- K, cols <- N, time <- M   (weights stationary)
    os: rows <- M, cols <- N, time <- K   (outputs stationary)
    is: rows <- K, cols <- M, time <- N   (inputs stationary)

``folds = ceil(Sr / R) * ceil(Sc / C)``. Compute cycles:

* SCALE-Sim-compatible: ``folds * (P + R + C + T - 2) - 1`` per GEMM with ``P = R`` for ws/is and
  ``P = 0`` for os: SCALE-Sim v3's "Total Cycles" (each fold preloads the stationary operand, then
  skews T vectors through R + C - 2 stages; folds never overlap; the -1 is SCALE-Sim's 0-based
  index of the last cycle). Verified against SCALE-Sim 3.0.0 on 90 shapes (tests/data);
* pipelined (default): the next fold's stationary operand preloads while the current fold streams,
  ``folds * max(T, P) + P + R + C - 2``. ``P`` is the preload time of one fold: each PE column
  holds ``rows x lanes`` stationary operands (weights in ws, inputs in is, 16-bit outputs drained in
  os) and takes ``preload_bits_per_column`` bits per cycle, so 8- and 4-bit weights load two and
  four times as many rows per cycle as FP16 ones.

An accelerator method's extras (:mod:`specsim.methods`) add ``extra_cycles`` once per GEMM and
``extra_cycles_per_output_tile`` once per output tile, however many folds along K accumulate into it
(e.g. Tender's accumulator shifts: ``(G - 1)`` shift cycles per output tile).

Memory traffic. Every operand is read from SRAM once per fold along the GEMM dim it lacks when that
dim is spatial (e.g. WS reads activations once per column fold, writes partial sums once per row
fold). DRAM traffic: the streamed operand (weights or KV cache) once, times a re-read factor when the
activations need several passes (M chunks that fit the activations buffer; or, when cheaper, the
inputs are streamed again for every weight tile instead) or a stationary-output / input dataflow
cannot keep the reused weight block in its buffer slot; inputs and outputs move to
or from DRAM only when they are not resident on chip (or do not fit the activations buffer). Draft
modes (``draft_fetch``) read their ``weight_bits`` per weight with the ``nibble_planes`` layout (the
top-nibble plane plus the layout's metadata: 4 + 6/32 bits for SPEQ's per-block BSFP) and whole 16-bit
words plus the same metadata with ``packed``. The streamed bytes are cut into tiles of one buffer slot; tiles share
the op's compute cycles in proportion (the engine replays them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.errors import SpecsimError
from specsim.hardware.config import BUFFER_NAMES, VECTOR_OPS, HardwareConfig
from specsim.hardware.ops import KIND_KV_GEMM, KIND_VECTOR, OpTable

UNIT_ARRAY, UNIT_VECTOR = 0, 1
BUF_WEIGHTS, BUF_ACTIVATIONS, BUF_OUTPUTS, BUF_KV = (
    BUFFER_NAMES.index(b) for b in ("weights", "activations", "outputs", "kv_cache")
)
OUTPUT_BITS = 16  #: bits per activation written back (FP16 activations between operators)


def _cdiv(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return -(-a // b)


def preload_cycles(hw: HardwareConfig, lanes: np.ndarray, stationary_bits: np.ndarray) -> np.ndarray:
    """Cycles to load one fold's stationary operand (pipelined timing): each PE column holds
    ``rows x lanes`` operands of ``stationary_bits`` and is written ``preload_bits_per_column`` bits per
    cycle, so narrower operands load proportionally more rows per cycle."""
    column_bits = hw.array.rows * lanes * stationary_bits
    return np.ceil(column_bits / hw.array.preload_bits_per_column).astype(np.int64)


@dataclass
class Mapping:
    """Per-operator mapping results (numpy arrays of one entry per operator; units in names)."""

    unit: np.ndarray  #: UNIT_ARRAY or UNIT_VECTOR
    mode: np.ndarray  #: PE mode index (array ops)
    macs: np.ndarray  #: multiply-accumulates
    peak_macs_per_cycle: np.ndarray
    folds: np.ndarray  #: array folds (0 for vector ops)
    compute_cycles: np.ndarray  #: array or vector busy cycles with operands on chip
    sram_read_cycles: np.ndarray  #: cycles the SRAM read ports need for the operands (bandwidth floor)
    stream_buffer: np.ndarray  #: buffer index the DRAM reads fill (-1: none)
    stream_bytes: np.ndarray  #: DRAM bytes of the streamed operand, re-reads included
    input_bytes: np.ndarray  #: DRAM bytes of input activations
    load_bytes: np.ndarray  #: stream_bytes + input_bytes
    write_bytes: np.ndarray  #: DRAM bytes written (outputs not kept on chip)
    fill_cycles: np.ndarray  #: SRAM write-port cycles to fill load_bytes
    tiles: np.ndarray  #: DRAM tiles (one buffer slot each; >= 1 for array ops)
    compulsory_bytes: np.ndarray  #: unique bytes that must cross the DRAM interface
    sram_read_bytes: np.ndarray  #: (ops, 4) bytes read per buffer (BUFFER_NAMES order)
    sram_write_bytes: np.ndarray  #: (ops, 4) bytes written per buffer

    def __len__(self) -> int:
        return len(self.unit)


#: the largest count (MACs, bytes, elements) of one operator the int64 arithmetic below can hold with room
MAX_COUNT = 2**53


def check_sizes(ops: OpTable) -> None:
    """One line when an operator is too large for exact int64 arithmetic (products computed in floats)."""
    m, n, k, b = (ops.columns[c].astype(np.float64) for c in ("m", "n", "k", "batch"))
    for what, size in (
        ("M x N x K x batch (MACs)", m * n * k * b),
        ("K x N x heads (weights)", k * n * b),
        ("M x K x batch (inputs)", m * k * b),
        ("M x N x batch (outputs)", m * n * b),
    ):
        bad = np.flatnonzero(size > MAX_COUNT)
        if bad.size:
            i = int(bad[0])
            name = ops.names[i] if ops.names else f"operator {i}"
            raise SpecsimError(
                f"{name}: {what} = {size[i]:.3g} exceeds {MAX_COUNT:.3g}: too large to simulate "
                f"(M={int(m[i])}, N={int(n[i])}, K={int(k[i])}, batch={int(b[i])})"
            )


@dataclass(frozen=True)
class _Shapes:
    """Per-operator shapes and operand widths a mapping works from (arrays of one entry per operator)."""

    M: np.ndarray
    N: np.ndarray
    K: np.ndarray
    B: np.ndarray
    lanes: np.ndarray  #: MACs per PE in the operator's mode
    R: np.ndarray  #: logical array rows (rows x lanes when lanes widen K)
    C: np.ndarray  #: logical array columns
    folds: np.ndarray  #: folds of the two spatial dims over R x C
    t: np.ndarray  #: length of the temporal dim (cycles per fold at one vector per cycle)
    wbits: np.ndarray  #: bits per streamed element fetched from DRAM (weights or KV cache)
    wbits_sram: np.ndarray  #: bits per streamed element stored in SRAM
    abits: np.ndarray  #: bits per input activation
    kv: np.ndarray  #: attention (streams the KV cache)
    vec: np.ndarray  #: vector-unit operator


def _shapes(hw: HardwareConfig, ops: OpTable) -> _Shapes:
    """Operand widths of each operator's PE mode and its folds on the array (module docstring)."""
    modes = [hw.mode(name) for name in ops.modes]
    mode_idx = ops.mode.astype(np.int64)
    lanes = np.array([m.lanes for m in modes], dtype=np.int64)[mode_idx]
    lane_k = np.array([m.lane_dim == "k" for m in modes])[mode_idx]
    packed = hw.dram.weight_layout == "packed"  # a draft then reads whole 16-bit words (+ the same metadata)
    wbits = np.array([m.weight_bits + 12 if (m.draft_fetch and packed) else m.weight_bits for m in modes])[mode_idx]
    wbits_sram = np.array([m.weight_bits for m in modes])[mode_idx]
    abits = np.array([m.activation_bits for m in modes])[mode_idx]
    kv = ops.kind == KIND_KV_GEMM
    R = hw.array.rows * np.where(lane_k, lanes, 1)
    C = hw.array.cols * np.where(lane_k, 1, lanes)
    sr, sc, t = {"ws": (ops.k, ops.n, ops.m), "os": (ops.m, ops.n, ops.k), "is": (ops.k, ops.m, ops.n)}[
        hw.array.dataflow
    ]
    return _Shapes(
        M=ops.m,
        N=ops.n,
        K=ops.k,
        B=ops.batch,
        lanes=lanes,
        R=R,
        C=C,
        folds=_cdiv(sr, R) * _cdiv(sc, C),
        t=t,
        wbits=np.where(kv, 16.0, wbits),
        wbits_sram=np.where(kv, 16.0, wbits_sram),  # KV cache stays FP16
        abits=abits,
        kv=kv,
        vec=ops.kind == KIND_VECTOR,
    )


def _array_cycles(hw: HardwareConfig, ops: OpTable, s: _Shapes, scalesim_compatible: bool) -> np.ndarray:
    """Cycles of every operator on the array (SCALE-Sim or pipelined timing, plus the method's extras)."""
    df = hw.array.dataflow
    if scalesim_compatible:
        preload = s.R if df != "os" else 0  # os keeps outputs in place: no preload
        cycles = s.B * (s.folds * (preload + s.R + s.C + s.t - 2) - 1)
        # SCALE-Sim reports the index of the last cycle; on degenerate arrays (1 x 1, os) that index is
        # below the MACs the array must do, so the physical minimum wins there
        cycles = np.maximum(cycles, _cdiv(s.M * s.N * s.K * s.B, hw.pes * s.lanes))
    else:
        preload = preload_cycles(hw, s.lanes, {"ws": s.wbits_sram, "is": s.abits, "os": OUTPUT_BITS}[df])
        cycles = s.B * s.folds * np.maximum(s.t, preload) + preload + hw.array.rows + hw.array.cols - 2
    # a method's extras: once per GEMM, and once per output tile (folds along K, spatial on the rows in ws
    # and is, accumulate into the same output tile)
    output_tiles = s.B * (s.folds // (_cdiv(s.K, s.R) if df in ("ws", "is") else 1))
    return cycles + ops.extra_cycles + ops.extra_cycles_per_output_tile * output_tiles


def _compute_cycles(hw: HardwareConfig, ops: OpTable, s: _Shapes, scalesim_compatible: bool) -> np.ndarray:
    """Busy cycles of the array (GEMMs) or the vector unit (element-wise operators)."""
    cpe = np.array([hw.vector.cycles_per_element[v] for v in VECTOR_OPS])[ops.vector_op.astype(np.int64)]
    vector_cycles = np.ceil(s.M * s.N * s.B * cpe / hw.vector.lanes).astype(np.int64)
    return np.where(s.vec, vector_cycles, _array_cycles(hw, ops, s, scalesim_compatible)).astype(np.int64)


@dataclass(frozen=True)
class _Traffic:
    """DRAM traffic per operator (bytes) and how the streamed operand is cut into buffer-slot tiles."""

    stream_bytes: np.ndarray
    input_bytes: np.ndarray
    write_bytes: np.ndarray
    compulsory: np.ndarray
    tiles: np.ndarray
    weight_passes: np.ndarray  #: passes over the streamed operand (one per input chunk re-streamed)
    out_resident: np.ndarray  #: outputs stay in the activations buffer


def _dram_traffic(hw: HardwareConfig, ops: OpTable, s: _Shapes) -> _Traffic:
    """Streamed operand with re-reads, inputs and outputs that cross the DRAM interface (module docstring)."""
    M, N, K, B, vec = s.M, s.N, s.K, s.B, s.vec
    act = hw.buffers.activations
    rows_fit = np.maximum(1, act.slot_bytes // np.maximum(np.ceil(K * s.abits / 8).astype(np.int64), 1))
    m_chunks = _cdiv(M, rows_fit)  # M chunks whose inputs fit one activations slot
    in_fits = m_chunks == 1
    out_resident = ops.output_resident & (M * N * B * OUTPUT_BITS // 8 <= act.size_bytes)
    slot = np.where(s.kv, hw.buffers.kv_cache.slot_bytes, hw.buffers.weights.slot_bytes)
    unique_stream = np.ceil(ops.streams * K * N * s.wbits / 8).astype(np.int64)
    reuse_block, passes = _reuse(hw, s)
    pass_bytes = unique_stream * np.where(reuse_block <= slot, 1, passes)  # one pass over the streamed operand
    in_bytes_all = np.ceil(M * K * s.abits / 8).astype(np.int64) * np.where(s.kv, B, 1)
    # inputs too big for a slot: either re-stream the weights per input chunk (a) or the inputs per
    # weight tile (b), whichever moves fewer DRAM bytes
    per_tile = np.maximum(1, _cdiv(pass_bytes, slot))
    restream_inputs = ~in_fits & (pass_bytes + in_bytes_all * per_tile < pass_bytes * m_chunks + in_bytes_all)
    weight_passes = np.where(restream_inputs, 1, m_chunks)
    stream_bytes = np.where(vec, 0, pass_bytes * weight_passes)
    input_bytes = np.where(
        vec | (ops.input_resident & in_fits), 0, in_bytes_all * np.where(restream_inputs, per_tile, 1)
    )
    out_bytes_all = M * N * B * OUTPUT_BITS // 8
    vec_spill = vec & ~(M * N * B * OUTPUT_BITS // 8 <= act.size_bytes)  # a vector op too big for the buffer
    input_bytes = np.where(vec_spill, M * N * B * OUTPUT_BITS // 8, input_bytes)
    compulsory = np.where(
        vec,
        np.where(vec_spill, 2 * M * N * B * OUTPUT_BITS // 8, 0),
        unique_stream
        + np.where(ops.input_resident & in_fits, 0, in_bytes_all)
        + np.where(out_resident, 0, out_bytes_all),
    )
    load_bytes = stream_bytes + input_bytes
    tiles = np.where(stream_bytes > 0, np.maximum(1, _cdiv(stream_bytes, slot)), np.where(load_bytes > 0, 1, 0))
    return _Traffic(
        stream_bytes,
        input_bytes,
        np.where(out_resident, 0, out_bytes_all),
        compulsory,
        tiles,
        weight_passes,
        out_resident,
    )


def _reuse(hw: HardwareConfig, s: _Shapes) -> tuple[np.ndarray, np.ndarray]:
    """Bytes of the streamed block one fold reuses, and the passes over it when it does not fit a slot."""
    df = hw.array.dataflow
    if df == "ws":  # every weight used by one fold per pass
        return np.zeros(len(s.M), dtype=np.int64), np.ones(len(s.M), dtype=np.int64)
    if df == "os":  # a column block (K x C) serves ceil(M/R) folds
        return np.ceil(s.K * np.minimum(s.N, s.C) * s.wbits / 8).astype(np.int64), _cdiv(s.M, s.R)
    return np.ceil(np.minimum(s.K, s.R) * s.N * s.wbits / 8).astype(np.int64), _cdiv(s.M, s.C)  # is: a row block


def _sram_traffic(hw: HardwareConfig, s: _Shapes, d: _Traffic) -> tuple[np.ndarray, np.ndarray]:
    """Bytes read and written per buffer, shape (ops, 4) in BUFFER_NAMES order."""
    n_ops = len(s.M)
    spatial = {"ws": {"k": s.R, "n": s.C}, "os": {"m": s.R, "n": s.C}, "is": {"k": s.R, "m": s.C}}[hw.array.dataflow]
    dims = {"m": s.M, "n": s.N, "k": s.K}

    def passes_without(dim: str) -> np.ndarray:  # passes over an operand that lacks GEMM dim ``dim``
        return _cdiv(dims[dim], spatial[dim]) if dim in spatial else np.ones(n_ops, dtype=np.int64)

    acc = hw.array.accumulator_bits / 8
    B, M, N, K, vec = s.B, s.M, s.N, s.K, s.vec
    elements = M * N * B
    w_reads = np.ceil(B * K * N * s.wbits_sram / 8).astype(np.int64) * passes_without("m") * d.weight_passes
    a_reads = np.ceil(B * M * K * s.abits / 8).astype(np.int64) * passes_without("n")
    psums = np.ceil(B * M * N * acc).astype(np.int64) * passes_without("k")  # writes; (passes - 1) re-reads + final
    sram_r = np.zeros((n_ops, len(BUFFER_NAMES)), dtype=np.int64)
    sram_w = np.zeros((n_ops, len(BUFFER_NAMES)), dtype=np.int64)
    rows, stream_col = np.arange(n_ops), np.where(s.kv, BUF_KV, BUF_WEIGHTS)
    sram_r[rows, stream_col] = np.where(vec, 0, w_reads)
    sram_w[rows, stream_col] = np.where(vec, 0, d.stream_bytes)
    sram_r[:, BUF_ACTIVATIONS] = np.where(vec, elements * OUTPUT_BITS // 8, a_reads)
    sram_w[:, BUF_ACTIVATIONS] = d.input_bytes + np.where(vec | d.out_resident, elements * OUTPUT_BITS // 8, 0)
    sram_r[:, BUF_OUTPUTS] = np.where(vec, 0, psums)
    sram_w[:, BUF_OUTPUTS] = np.where(vec, 0, psums)
    return sram_r, sram_w


def map_ops(hw: HardwareConfig, ops: OpTable, scalesim_compatible: bool = False) -> Mapping:
    """Map every operator of ``ops`` onto ``hw`` (see the module docstring for the rules)."""
    check_sizes(ops)
    s = _shapes(hw, ops)
    compute = _compute_cycles(hw, ops, s, scalesim_compatible)
    d = _dram_traffic(hw, ops, s)
    sram_r, sram_w = _sram_traffic(hw, s, d)
    port = np.array([hw.buffers.get(b).port_bytes_per_cycle for b in BUFFER_NAMES], dtype=np.int64)
    read_bw = port * np.array([hw.buffers.get(b).ports for b in BUFFER_NAMES], dtype=np.int64)
    stream_col = np.where(s.kv, BUF_KV, BUF_WEIGHTS)
    fill_cycles = _cdiv(sram_w[np.arange(len(ops)), stream_col] * (~s.vec), port[stream_col]) + _cdiv(
        d.input_bytes, port[BUF_ACTIVATIONS]
    )
    return Mapping(
        unit=np.where(s.vec, 1, 0).astype(np.int8),
        mode=ops.mode.astype(np.int16),
        macs=ops.macs,
        peak_macs_per_cycle=np.where(s.vec, hw.vector.lanes, hw.pes * s.lanes),
        folds=np.where(s.vec, 0, s.B * s.folds),
        compute_cycles=compute,
        sram_read_cycles=_cdiv(sram_r, read_bw).max(axis=1).astype(np.int64),
        stream_buffer=np.where(s.vec, -1, stream_col).astype(np.int8),
        stream_bytes=d.stream_bytes.astype(np.int64),
        input_bytes=d.input_bytes.astype(np.int64),
        load_bytes=(d.stream_bytes + d.input_bytes).astype(np.int64),
        write_bytes=d.write_bytes.astype(np.int64),
        fill_cycles=fill_cycles.astype(np.int64),
        tiles=d.tiles.astype(np.int64),
        compulsory_bytes=d.compulsory.astype(np.int64),
        sram_read_bytes=sram_r,
        sram_write_bytes=sram_w,
    )
