"""MXFP4 against hand-computed reference blocks (OCP MX v1.0, FLOOR scale, E2M1 RNE)."""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from specsim.workload.formats.mxfp4 import MXFP4


def _block(values):
    return torch.tensor([values + [0.0] * (32 - len(values))])


def test_hand_block_rounding_ties_and_saturation():
    # amax 7.9 -> floor(log2) = 2 -> X = 2**(2-2) = 1; E8M0 code 127.
    x = _block([6.0, -3.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 7.9, 0.5, -0.5, 0.3, -5.5])
    enc = MXFP4().encode(x)
    assert enc.scales.tolist() == [[127]]
    out = MXFP4().decode(enc)[0, :14].tolist()
    #       6   -3  .25->0 .75->1 1.25->1 1.75->2 2.5->2 3.5->4 5->4 7.9->6 .5  -.5  .3->.5 -5.5->-6
    assert out == [6.0, -3.0, 0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 6.0, 0.5, -0.5, 0.5, -6.0]
    assert enc.outlier_count() == 1  # 7.9 saturated


def test_hand_block_small_scale_and_subnormal_half():
    # amax 0.1 -> floor(log2 0.1) = -4 -> X = 2**-6; 0.1/X = 6.4 -> 6 (saturates); 2**-7 -> 0.5 (subnormal)
    x = _block([0.1, 2.0**-7, -(2.0**-8)])
    enc = MXFP4().encode(x)
    assert enc.scales.tolist() == [[127 - 6]]
    out = MXFP4().decode(enc)[0, :3].tolist()
    assert out == [6 * 2.0**-6, 0.5 * 2.0**-6, -0.0]


def test_all_zero_block_and_bits_per_weight():
    x = torch.zeros(4, 64)
    enc = MXFP4().encode(x)
    assert enc.scales.tolist() == [[0, 0]] * 4
    assert MXFP4().decode(enc).abs().sum() == 0
    assert enc.stored_bits() / x.numel() == 4.25


def test_blocks_run_along_the_reduction_axis_and_pad():
    x = torch.zeros(2, 40)
    x[0, 0] = 4.0  # block 0 of row 0 only
    x[1, 35] = 0.25  # block 1 of row 1 (padded to 64 columns)
    enc = MXFP4().encode(x)
    assert enc.scales.tolist() == [[127, 0], [0, 123]]
    assert torch.equal(MXFP4().decode(enc), x)
    assert enc.stored_bits() == 2 * 64 * 4 + 4 * 8


def _reference(v: float, amax: float) -> float:
    """Independent scalar MXFP4 reference (grid search with round-half-to-even on the mantissa bit)."""
    if amax == 0:
        return 0.0
    x = 2.0 ** (math.floor(math.log2(amax)) - 2)
    grid = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    a = min(abs(v) / x, 6.0)
    best = min(range(8), key=lambda i: (abs(grid[i] - a), i % 2))  # tie -> even mantissa bit
    return math.copysign(grid[best] * x, v) if grid[best] else 0.0


@given(st.lists(st.floats(-100, 100, allow_subnormal=False, width=16), min_size=32, max_size=32))
def test_matches_scalar_reference(values):
    x = torch.tensor([values], dtype=torch.float16).float()
    amax = float(x.abs().max())
    out = MXFP4().quantize(x)[0].tolist()
    assert out == [_reference(v, amax) for v in x[0].tolist()]
