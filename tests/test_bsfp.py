"""BSFP: exhaustive bit-exactness over all 65,536 FP16 patterns and draft-decode properties."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from specsim.workload.formats import fp16
from specsim.workload.formats.bsfp import (
    BSFP,
    BUCKET_CAPACITY,
    CODE_SPACE,
    DEFAULT_LAYOUT,
    LAYOUTS,
    N_BUCKETS,
    BSFPLayout,
    BSFPRemap,
    project_edges,
    remap_for_levels,
)

ALL = fp16.all_patterns().reshape(1, -1)


def _expected_main_path(d: int) -> torch.Tensor:
    """Patterns BSFP admits at shift d: finite, aligned exactly, |w * 2**d| < 2."""
    scaled, exact = fp16.scale_pow2_exact(ALL, torch.tensor([[d]]))
    return exact & (scaled.float().abs() < 2)


HAND_REMAPS = [
    BSFPRemap((0, 4096, 8192, 12288, 16384, 16384, 16384, 16384, 16384), (0.0, 1e-3, 1e-2, 0.1, 1.0, 1.0, 1.0, 1.0)),
    BSFPRemap((0, 0, 0, 0, 0, 4096, 8192, 12288, 16384), (0.0, 0.0, 0.0, 0.0, 0.0, 1e-3, 0.1, 1.0)),
    BSFPRemap((0, 1, 2, 3, 4096, 8000, 12000, 15000, 16384), (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.5)),
]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("d", [None, -4, -1, 0, 1, 3, 14])
def test_every_fp16_pattern_roundtrips_with_fitted_remap(layout, d):
    """All 65,536 patterns, remap fitted to them, at the fitted shift (None) and at forced shifts."""
    codec = BSFP(layout)
    enc = codec.encode(ALL, shift=None if d is None else torch.tensor([d]))
    assert torch.equal(fp16.to_bits(codec.decode_fp16(enc)), fp16.to_bits(ALL))
    if LAYOUTS[layout].scope == "block":  # per-block shifts: tests/test_bsfp_blocks.py
        return
    if d is None:  # the largest finite value 65504 aligns into [1, 2): d = -15
        assert enc.shift.flatten().tolist() == [-15]
        d = -15
    main = torch.ones(ALL.numel(), dtype=torch.bool)
    main[enc.side_index] = False
    assert torch.equal(main, _expected_main_path(d).reshape(-1))


@pytest.mark.parametrize("remap", HAND_REMAPS)
@pytest.mark.parametrize("d", [0, 2, -2])
def test_every_fp16_pattern_roundtrips_with_any_remap(remap, d):
    codec = BSFP("e3")
    enc = codec.encode(ALL, remap=remap, shift=torch.tensor([d]))
    assert torch.equal(fp16.to_bits(codec.decode_fp16(enc)), fp16.to_bits(ALL))


def test_main_path_at_shift_zero_is_exactly_the_values_below_two():
    enc = BSFP("lut8").encode(ALL, shift=torch.tensor([0]))
    assert enc.outlier_count() == 32768  # |w| >= 2, inf and NaN, both signs
    assert enc.counts["side_out_of_range"] == 32768


@st.composite
def feasible_remaps(draw):
    raw = draw(st.lists(st.integers(0, BUCKET_CAPACITY), min_size=N_BUCKETS - 1, max_size=N_BUCKETS - 1))
    edges = project_edges(np.array([0] + sorted(np.cumsum(raw).clip(0, CODE_SPACE).tolist()) + [CODE_SPACE]))
    levels = sorted(draw(st.lists(st.floats(0, 1.9), min_size=N_BUCKETS, max_size=N_BUCKETS)))
    return BSFPRemap(tuple(int(e) for e in edges), tuple(levels))


@given(
    remap=feasible_remaps(),
    shifts=st.lists(st.integers(-6, 20), min_size=3, max_size=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_remaps_and_row_shifts_roundtrip(remap, shifts, seed):
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, fp16.N_PATTERNS, (3, 64), generator=g, dtype=torch.int32)
    w = fp16.from_bits(bits)
    codec = BSFP(BSFPLayout("t", None, scope="row"))
    enc = codec.encode(w, remap=remap, shift=torch.tensor(shifts))
    assert torch.equal(fp16.to_bits(codec.decode_fp16(enc)), bits)


@given(st.lists(st.integers(-100, CODE_SPACE + 100), min_size=N_BUCKETS - 1, max_size=N_BUCKETS - 1))
def test_projected_edges_are_feasible_and_idempotent(inner):
    edges = project_edges(np.array([0] + sorted(inner) + [CODE_SPACE]))
    widths = np.diff(edges)
    assert edges[0] == 0 and edges[-1] == CODE_SPACE
    assert widths.min() >= 0 and widths.max() <= BUCKET_CAPACITY
    assert np.array_equal(project_edges(edges), edges)


def test_remap_rounds_to_nearest_level_where_unconstrained():
    remap = remap_for_levels([0.0, 2**-10, 2**-8, 2**-6, 2**-4, 0.25, 0.5, 1.0])
    codec = BSFP("lut8")
    w = torch.tensor([[0.3, 0.4, 0.74, 0.76, -0.9, 0.0]], dtype=torch.float16)
    draft = codec.decode_draft(codec.encode(w, remap=remap, shift=torch.tensor([0])))
    assert draft.tolist() == [[0.25, 0.5, 0.5, 1.0, -1.0, 0.0]]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_draft_reads_only_the_top_nibble(layout):
    torch.manual_seed(0)
    w = (torch.randn(64, 128) * 0.05).half()
    codec = BSFP(layout)
    enc = codec.encode(w)
    draft = codec.decode_draft(enc)
    enc.words = (enc.words & 0xF000) | torch.randint(0, 4096, enc.words.shape, dtype=torch.int32)
    assert torch.equal(codec.decode_draft(enc), draft)
    assert enc.fetched_bits() == LAYOUTS[layout].draft_bits_per_weight(64, 128) * w.numel()
    assert enc.stored_bits() >= 16 * w.numel()
    if LAYOUTS[layout].scope != "block":
        assert enc.fetched_bits() < 4.1 * w.numel()


def test_draft_is_sign_symmetric_and_keeps_zero():
    torch.manual_seed(1)
    w = (torch.randn(32, 64) * 0.05).half()
    w[0, :5] = 0
    codec = BSFP("lut8_row")
    a = codec.decode_draft(codec.encode(torch.cat([w, -w])))
    assert torch.equal(a[:32], -a[32:])
    assert a[0, :5].abs().sum() == 0


def test_exact_outliers_are_exact_in_the_draft():
    torch.manual_seed(2)
    w = (torch.randn(16, 256) * 0.02).half()
    w[3, 7] = 1.7
    codec = BSFP(BSFPLayout("x", None, scope="tensor", exact_outliers=4))
    enc = codec.encode(w)
    assert enc.counts["side_exact_top"] == 4
    assert codec.decode_draft(enc)[3, 7].item() == pytest.approx(float(w[3, 7]))
    assert torch.equal(fp16.to_bits(codec.decode_fp16(enc)), fp16.to_bits(w))


def test_row_scope_beats_or_matches_tensor_scope_on_rows_of_different_scale():
    torch.manual_seed(3)
    w = (torch.randn(64, 256) * torch.logspace(-3, 0, 64)[:, None]).half()
    err = {}
    for lay in ("lut8", "lut8_row"):
        c = BSFP(lay)
        d = c.decode_draft(c.encode(w))
        err[lay] = float(((d - w.float()) ** 2).sum())
    assert err["lut8_row"] < err["lut8"]


@pytest.mark.parametrize("layout", ["lut8_row_max", DEFAULT_LAYOUT])
def test_quantize_draft_is_the_draft_view_of_a_linear_weight(layout):
    lin = torch.nn.Linear(64, 32)
    codec = BSFP(layout)
    w = lin.weight.detach()
    enc = codec.encode(w)
    draft = codec.quantize_draft(w)
    assert draft.shape == w.shape and draft.dtype == w.dtype
    shift, select = enc.shift.expand(32, -1), enc.select
    for r in range(w.shape[0]):  # every draft value is +-level[t] * 2**-d of its scope (row or block)
        for b in range(shift.shape[1]):
            levels = torch.tensor(enc.remaps[int(select[r, b])].levels)
            allowed = torch.cat([levels, -levels]) * 2.0 ** -int(shift[r, b])
            assert bool(torch.isin(draft[r, b * enc.block : (b + 1) * enc.block], allowed).all())
    assert torch.equal(codec.quantize(w), w.half().float())  # full view: the FP16 weights, exactly


def test_counts_report_zeros_subnormals_and_clipped_largest_values():
    w = torch.tensor([[0.0, -0.0, 2.0**-20, 1.0, 0.5, 0.25]], dtype=torch.float16)
    remap = remap_for_levels([0.0, 2**-10, 2**-8, 2**-6, 2**-4, 0.25, 0.5, 0.75])
    enc = BSFP("lut8").encode(w, remap=remap, shift=torch.tensor([0]))
    assert enc.counts["zeros"] == 2 and enc.counts["subnormals"] == 1
    assert enc.counts["draft_clipped"] == 1  # 1.0 lies above the top level 0.75
