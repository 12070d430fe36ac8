import torch
from hypothesis import given
from hypothesis import strategies as st

from specsim.workload.formats.integer import IntFormat


def test_per_channel_int4_hand_example():
    w = torch.tensor([[7.0, 3.5, -2.5, 0.0], [1.0, -0.5, 0.25, 0.125]])
    out = IntFormat(4).quantize(w)
    # row 0: scale 1 -> 3.5 rounds half to even (4), -2.5 -> -2; row 1: scale 1/7
    assert out[0].tolist() == [7.0, 4.0, -2.0, 0.0]
    assert torch.allclose(out[1], torch.round(w[1] * 7) / 7, atol=1e-3)


def test_group_scales_and_bits():
    w = torch.randn(8, 256)
    enc = IntFormat(4, 128).encode(w)
    assert enc.scales.shape == (8, 2)
    assert enc.stored_bits() / w.numel() == 4 + 16 / 128


@given(st.integers(1, 6), st.integers(1, 300), st.sampled_from([4, 8]), st.sampled_from([None, 32, 128]))
def test_error_bounded_by_half_a_step(rows, cols, bits, group):
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(rows * 1000 + cols))
    fmt = IntFormat(bits, group)
    enc = fmt.encode(w)
    out = fmt.decode(enc)
    g = enc.group
    scale = enc.scales.repeat_interleave(g, dim=1)[:, :cols]
    assert bool(((out - w).abs() <= scale / 2 * (1 + 2e-3) + 1e-6).all())


def test_subnormal_fp16_scale_clipping_is_counted():
    w = torch.full((1, 8), 1e-4)  # amax/127 is subnormal in FP16 and rounds down
    enc = IntFormat(8).encode(w)
    assert enc.outlier_count() == 8
    assert IntFormat(8).encode(torch.randn(4, 64)).outlier_count() == 0
