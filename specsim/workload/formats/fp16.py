"""IEEE-754 binary16 (FP16) bit utilities, vectorised in torch.

FP16 layout: bit 15 sign, bits 14..10 exponent (bias 15), bits 9..0 mantissa. The 15-bit
*magnitude code* ``bits & 0x7FFF`` is monotone in ``|value|`` for all finite values, which the
BSFP codec relies on. Bit patterns are carried as ``int32`` tensors in ``[0, 65535]``.
"""

from __future__ import annotations

import torch

SIGN_MASK = 0x8000
MAGNITUDE_MASK = 0x7FFF
EXPONENT_BIAS = 15
MANTISSA_BITS = 10
EXPONENT_SHIFT = MANTISSA_BITS
INF_CODE = 0x7C00  #: magnitude code of +inf; every magnitude code >= INF_CODE is inf or NaN
N_PATTERNS = 1 << 16


def to_bits(x: torch.Tensor) -> torch.Tensor:
    """FP16 tensor -> int32 tensor of its bit patterns in [0, 65535]."""
    if x.dtype != torch.float16:
        raise TypeError(f"to_bits expects float16, got {x.dtype}")
    return x.contiguous().view(torch.int16).to(torch.int32) & 0xFFFF


def from_bits(bits: torch.Tensor) -> torch.Tensor:
    """int tensor of bit patterns in [0, 65535] -> FP16 tensor with exactly those bits."""
    signed = torch.where(bits >= 0x8000, bits - 0x10000, bits)
    return signed.to(torch.int16).view(torch.float16)


def all_patterns() -> torch.Tensor:
    """All 65,536 FP16 values, in bit-pattern order (includes +-0, subnormals, +-inf and NaNs)."""
    return from_bits(torch.arange(N_PATTERNS, dtype=torch.int32))


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise bit-pattern equality of two FP16 tensors (NaN payloads and -0 included)."""
    return to_bits(a) == to_bits(b)


def floor_log2_abs(x: torch.Tensor) -> torch.Tensor:
    """``floor(log2(|x|))`` as int32, exact for every finite nonzero float (via ``frexp``).

    Zeros give a very small sentinel (-1000) so that they never set a maximum.
    """
    _, exp = torch.frexp(x.float())
    out = exp.to(torch.int32) - 1
    return torch.where(x == 0, torch.full_like(out, -1000), out)


def scale_pow2_exact(x: torch.Tensor, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Multiply FP16 ``x`` by ``2**shift`` (broadcastable int tensor) and report exactness.

    Returns ``(scaled_fp16, exact)`` where ``exact`` marks elements whose scaled value is an FP16
    number that scales back to ``x`` bit-exactly (no overflow, no bits lost in the subnormal range).
    Non-finite inputs are never exact.
    """
    xf = x.float()
    scaled = torch.ldexp(xf, shift.to(torch.float32)).half()
    back = torch.ldexp(scaled.float(), (-shift).to(torch.float32)).half()
    exact = bits_equal(back, x) & torch.isfinite(x) & torch.isfinite(scaled)
    return scaled, exact
