"""OliVe: pair structure, victim code, grids, ties and the clip search."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from specsim.workload.formats import olive
from specsim.workload.formats.olive import OliVe, OliveActivationQuantizer, OliveChoice, encode_with, grid


def test_grids_match_the_reference_implementation():
    assert grid("int4").normals == tuple(4.0 * k for k in range(8))
    assert grid("flint4").normals == (0, 2, 4, 6, 8, 12, 16, 32)
    assert grid("int4").outliers == (48, 64, 96, 128, 192, 256, 384)
    assert len(grid("int8").outliers) == 127 and grid("int8").outliers[0] == 33 and grid("int8").outliers[-1] == 504
    # relative to the int4 normal max of 7 steps: 1.7x .. 13.7x
    assert grid("int4").outliers[0] / 28 == pytest.approx(12 / 7)


def _encode_unit(values, name="int4"):
    """Encode one row with scale 1 code unit per 1.0 (alpha = max normal)."""
    g = grid(name)
    x = torch.tensor([values], dtype=torch.float64)
    return encode_with(x, OliveChoice(g, torch.tensor([g.max_normal], dtype=torch.float64), 0.0))


def test_hand_pairs_normal_outlier_and_victim():
    enc = _encode_unit([4.0, 100.0, 200.0, 50.0, 38.0, 1.0, -2.0, 2.0])
    out = OliVe(4).decode(enc)[0].tolist()
    # (4, 100): 100 -> outlier 96, its partner 4 becomes the victim
    # (200, 50): both outliers -> the even one (192) is kept, the odd one is the victim
    # (38, 1): 38 ties between 28 and 48 -> outlier 48; 1 becomes the victim
    # (-2, 2): ties round toward +inf -> 0 and 4
    assert out == [0.0, 96.0, 192.0, 0.0, 48.0, 0.0, 0.0, 4.0]
    codes = enc.codes[0].tolist()
    assert codes[0] == 0b1000 and codes[3] == 0b1000 and codes[5] == 0b1000
    assert enc.outlier_count() == 3


def test_flint_codes_never_use_the_victim_pattern_for_normals():
    enc = _encode_unit([-0.1, -2.0, -16.0, 32.0], "flint4")
    assert 0b1000 not in enc.codes[0].tolist()
    assert OliVe(4).decode(enc)[0].tolist() == [0.0, -2.0, -16.0, 32.0]


@given(st.floats(-600, 600, allow_nan=False))
def test_fast_nearest_matches_reference(y):
    for name in ("int4", "flint4", "int8"):
        g = grid(name)
        mags, n = g.magnitudes, len(g.normals)
        boundary = 0.5 * (mags[n - 1] + mags[n])
        assert olive._nearest(y, mags, n, g.uniform_step, boundary) == olive.nearest_reference(y, mags, n)


def test_fast_nearest_matches_reference_on_every_tie():
    for name in ("int4", "flint4", "int8"):
        g = grid(name)
        mags, n = g.magnitudes, len(g.normals)
        boundary = 0.5 * (mags[n - 1] + mags[n])
        mids = (mags[:-1] + mags[1:]) / 2
        for y in np.concatenate([mids, -mids, mags, -mags]):
            assert olive._nearest(y, mags, n, g.uniform_step, boundary) == olive.nearest_reference(y, mags, n)


@given(
    rows=st.integers(1, 4),
    pairs=st.integers(1, 40),
    bits=st.sampled_from([4, 8]),
    seed=st.integers(0, 2**31 - 1),
    heavy=st.floats(1, 60),
)
def test_pair_invariants(rows, pairs, bits, seed, heavy):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 2 * pairs, generator=g) * (1 + (torch.rand(rows, 2 * pairs, generator=g) < 0.05) * heavy)
    fmt = OliVe(bits)
    enc = fmt.encode(x)
    out = fmt.decode(enc)
    codes = enc.codes.reshape(rows, pairs, 2)
    victim = codes == enc.grid.victim_code
    assert not bool(victim.all(dim=2).any())  # never two victims in a pair
    pair_out = out.reshape(rows, pairs, 2)
    assert bool((pair_out[victim] == 0).all())  # victims are zeroed
    s = enc.scale.float()[:, None, None]
    is_outlier = pair_out.abs() > olive.OUTLIER_THRESHOLD * s * (1 + 1e-6)
    assert torch.equal(is_outlier, victim.flip(2))  # an outlier exactly where the partner is a victim
    # values on the grid; normals not next to an outlier keep their rounding error within half a step
    mags = torch.tensor(enc.grid.magnitudes, dtype=torch.float32)
    units = pair_out.abs() / s
    assert bool(((units[..., None] - mags).abs().min(dim=-1).values <= 1e-3 * (1 + units)).all())
    normal = ~victim & ~is_outlier & ~victim.flip(2)
    alpha_units = enc.grid.max_normal
    within = (x.reshape(rows, pairs, 2).abs() / s <= alpha_units) & normal
    max_gap = float(np.diff(enc.grid.normals).max())
    err = (pair_out - x.reshape(rows, pairs, 2)).abs() / s
    assert bool((err[within] <= max_gap / 2 * (1 + 1e-3) + 1e-3).all())


def test_search_exhaustive_is_optimal_and_fast_search_is_close():
    torch.manual_seed(0)
    x = torch.randn(64, 256) * 0.02
    x[::5, ::17] *= 10
    ex = olive.search(x, 4, per_row=True, strategy="exhaustive")
    fast = olive.search(x, 4, per_row=True)
    assert ex.sse <= fast.sse <= ex.sse * 1.05
    start = olive._start(x, True).double()
    pct = (ex.alpha / start * 100).round()
    assert bool(((pct >= 75) & (pct <= 249) & (pct % 2 == 1)).all())


def test_activation_quantizer_is_static_per_tensor():
    torch.manual_seed(1)
    x = torch.randn(32, 64)
    q = OliveActivationQuantizer(8).calibrate(x)
    y = q.quantize(x * 0.5)  # reuses the calibrated scale
    assert q.choice.alpha.numel() == 32 and len(set(q.choice.alpha.tolist())) == 1
    assert float(((y - x * 0.5) ** 2).mean()) < 1e-3
