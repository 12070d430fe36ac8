import torch

from specsim.workload.formats import fp16


def test_bits_roundtrip_all_patterns():
    bits = torch.arange(fp16.N_PATTERNS, dtype=torch.int32)
    assert torch.equal(fp16.to_bits(fp16.from_bits(bits)), bits)


def test_floor_log2_matches_exponent_for_normals_and_subnormals():
    x = torch.tensor([1.0, 1.5, 2.0, 0.75, 2.0**-14, 2.0**-24, 3 * 2.0**-24, 65504.0], dtype=torch.float16)
    assert fp16.floor_log2_abs(x).tolist() == [0, 0, 1, -1, -14, -24, -23, 15]


def test_scale_pow2_exact_flags_lost_bits_and_overflow():
    x = torch.tensor([3 * 2.0**-24, 2.0**-14, 40000.0, 1.0], dtype=torch.float16)
    scaled, exact = fp16.scale_pow2_exact(x, torch.tensor([-1, -1, 1, 3]))
    assert exact.tolist() == [False, True, False, True]
    assert scaled[3].item() == 8.0
