"""Tender: power-of-two channel groups, calibration and shift-accumulate arithmetic."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from specsim.workload.formats.integer import qmax_of
from specsim.workload.formats.tender import (
    CHUNK_ROWS,
    TenderActivationQuantizer,
    TenderWeights,
    tender_matmul,
)


def _activations(seed, rows, channels, spread):
    g = torch.Generator().manual_seed(seed)
    scale = torch.exp2(torch.rand(channels, generator=g) * spread)
    return torch.randn(rows, channels, generator=g) * scale + torch.randn(channels, generator=g)


@given(st.integers(0, 10**6), st.integers(1, 300), st.integers(2, 40), st.sampled_from([4, 8]), st.integers(1, 16))
def test_groups_scales_and_reconstruction(seed, rows, channels, bits, groups):
    x = _activations(seed, rows, channels, 8.0)
    q = TenderActivationQuantizer(bits, groups).calibrate(x)
    cal = q.calibration
    ratios = cal.scales[1:] / cal.scales[:-1]
    assert bool((ratios == 2.0).all())  # exactly powers of two apart
    # every channel sits in the smallest group whose threshold covers its max
    # channel maxima around the float64 bias (max + min) / 2, which groups the channels; cal.bias is that
    # bias rounded to float32, which with a large offset (bias ~300, range ~14, seed 347) moves a maximum
    # by 1.1e-6 relative
    xd = x.double()
    bias = (xd.amax(dim=0) + xd.amin(dim=0)) / 2
    cmax = (xd - bias).abs().amax(dim=0) if rows <= CHUNK_ROWS else None
    if cmax is not None:
        thr = cal.scales * qmax_of(bits)
        assert bool((cmax <= thr[cal.group] * (1 + 1e-6)).all())
        lower = torch.where(cal.group > 0, thr[(cal.group - 1).clamp_min(0)], torch.zeros_like(cmax))
        assert bool(((cmax > lower * (1 - 1e-6)) | (cal.group == 0)).all())
        # calibrated on the same data: no clipping, error within half a group step
        err = (q.quantize(x).double() - x.double()).abs()
        assert bool((err <= cal.channel_scale() / 2 * (1 + 1e-6) + 1e-6).all())
    codes, _ = q.encode(x)
    assert int(codes.min()) >= -qmax_of(bits) - 1 and int(codes.max()) <= qmax_of(bits)


def test_hand_example_two_groups():
    x = torch.tensor([[1.0, 8.0], [-1.0, -8.0]])  # bias 0; cmax 1 and 8; tmax 8
    cal = TenderActivationQuantizer(4, 2).calibrate(x).calibration
    assert cal.group.tolist() == [0, 1]  # thresholds 4 and 8
    assert cal.scales.tolist() == [4 / 7, 8 / 7]


@given(st.integers(0, 10**6), st.sampled_from([4, 8]), st.integers(1, 14))
def test_shift_accumulate_equals_dequantized_matmul(seed, bits, groups):
    x = _activations(seed, 40, 24, 6.0)
    w = torch.randn(8, 24, generator=torch.Generator().manual_seed(seed + 1)) * 0.1
    aq = TenderActivationQuantizer(bits, groups).calibrate(x)
    codes, cals = aq.encode(x)
    wf = TenderWeights(bits)
    we = wf.encode(w)
    y = tender_matmul(codes, cals[0], we, w)
    cal = cals[0]
    x_hat = codes.double() * cal.channel_scale()  # dequantized, bias removed
    emu = x_hat @ wf.decode(we).double().T + cal.bias.double() @ w.double().T
    assert torch.allclose(y, emu, rtol=1e-12, atol=1e-12)


def test_runtime_mode_recomputes_per_chunk():
    x = torch.cat([torch.randn(CHUNK_ROWS, 8), 100 * torch.randn(10, 8)])
    q = TenderActivationQuantizer(8, 4)
    _, cals = q.encode(x, runtime=True)
    assert len(cals) == 2 and cals[1].base_scale > 10 * cals[0].base_scale
