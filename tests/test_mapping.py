"""map_ops on its own: folds, cycles and bytes of single GEMMs by hand formulas (module docstring of
specsim.hardware.mapping), written out here independently of the mapping code."""

from __future__ import annotations

import math

import pytest

from specsim.hardware.config import load_hardware
from specsim.hardware.mapping import map_ops
from specsim.hardware.ops import OpTable, gemm_table

HW = load_hardware("speq")  # 64x64 WS, preload 256 bits per column per cycle, nibble-plane weights


@pytest.mark.parametrize("mode, lanes, weight_bits", [("fp16", 1, 16), ("quarter", 4, 4 + 6 / 32), ("int4", 4, 4)])
@pytest.mark.parametrize("m, n, k", [(1, 4096, 4096), (5, 11008, 4096), (3, 100, 70)])
def test_gemm_by_hand(mode, lanes, weight_bits, m, n, k):
    ops = gemm_table(m, n, k, mode, tuple(HW.modes))
    mp = map_ops(HW, ops)
    rows, cols = 64 * lanes, 64  # lanes widen K on the rows (lane_dim k)
    folds = math.ceil(k / rows) * math.ceil(n / cols)
    preload = math.ceil(64 * lanes * weight_bits / 256)  # a column holds 64 x lanes weights, 256 bits per cycle
    assert mp.folds[0] == folds
    assert mp.compute_cycles[0] == folds * max(m, preload) + preload + 64 + 64 - 2
    act_bits = HW.modes[mode].activation_bits
    # weights once (ws), inputs in and outputs out (gemm_table: not resident), 16-bit outputs
    assert mp.stream_bytes[0] == math.ceil(k * n * weight_bits / 8)
    assert mp.input_bytes[0] == math.ceil(m * k * act_bits / 8)
    assert mp.write_bytes[0] == m * n * 2
    assert mp.macs[0] == m * n * k and mp.peak_macs_per_cycle[0] == 64 * 64 * lanes
    slot = HW.buffers.weights.slot_bytes
    assert mp.tiles[0] == max(1, math.ceil(mp.stream_bytes[0] / slot))


def test_extra_cycles_add_once_per_gemm_and_per_output_tile():
    base = dict(kind="gemm", m=2, n=300, k=700, mode="fp16")
    plain = map_ops(HW, OpTable.from_rows([base], tuple(HW.modes))).compute_cycles[0]
    extra = map_ops(
        HW, OpTable.from_rows([{**base, "extra_cycles": 7, "extra_cycles_per_output_tile": 3}], tuple(HW.modes))
    ).compute_cycles[0]
    assert extra - plain == 7 + 3 * math.ceil(300 / 64)  # ws: K folds share an output tile


def test_vector_op_by_hand():
    ops = OpTable.from_rows(
        [{"kind": "vector", "m": 3, "n": 1000, "vector_op": "softmax", "mode": "fp16"}], tuple(HW.modes)
    )
    mp = map_ops(HW, ops)
    per_element = HW.vector.cycles_per_element["softmax"]
    assert mp.compute_cycles[0] == math.ceil(3 * 1000 * per_element / HW.vector.lanes)
    assert mp.macs[0] == 0 and mp.folds[0] == 0
