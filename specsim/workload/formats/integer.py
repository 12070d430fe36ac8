"""Plain symmetric integer formats: round-to-nearest(-even), per output channel or per group.

``IntFormat(bits, group)`` quantizes weights ``[out, in]`` with one FP16 scale per row (``group=None``,
per-channel) or per ``group`` consecutive input features (e.g. 128: the usual W4A16 ``g128``):
``scale = amax / qmax`` with ``qmax = 2**(bits-1) - 1``, ``q = clamp(round_half_even(w / scale), -qmax, qmax)``.
Stored: ``bits`` per weight plus 16 per scale. These are the W4A16 / W8A8 references; the same
per-channel rule is Tender's weight quantizer.

:func:`quantize_symmetric` is the shared mechanism used by the Tender activation quantizer too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from specsim.errors import SpecsimError
from specsim.workload.formats.base import EncodedTensor, WeightFormat, check_weight

SCALE_BITS = 16


def qmax_of(bits: int) -> int:
    """Largest symmetric integer code of a signed ``bits``-bit format (7 for INT4, 127 for INT8)."""
    return (1 << (bits - 1)) - 1


def quantize_symmetric(x: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes ``clamp(round_half_even(x / scale), -qmax, qmax)`` (int32; zero scale -> 0)."""
    q = qmax_of(bits)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.round(x / safe).clamp(-q, q)
    return torch.where(scale > 0, codes, torch.zeros_like(codes)).to(torch.int32)


def fp16_scale(amax: torch.Tensor, bits: int) -> torch.Tensor:
    """FP16-representable scale ``amax / qmax`` as float32 (what the hardware stores)."""
    return (amax.float() / qmax_of(bits)).half().float()


@dataclass
class IntTensor(EncodedTensor):
    """Stored integer codes and FP16 scales."""

    codes: torch.Tensor = field(default=None, repr=False)  #: int32 [rows, padded cols]
    scales: torch.Tensor = field(default=None, repr=False)  #: float32 (FP16 values) [rows, groups]
    bits: int = 8
    group: int = 0
    clipped: int = 0

    def stored_bits(self) -> int:
        return self.bits * self.codes.numel() + SCALE_BITS * self.scales.numel()

    def outlier_count(self) -> int:
        """Elements beyond +-(qmax + 1/2) steps, clamped: only when the FP16 scale rounded down
        (tiny groups whose ``amax / qmax`` is subnormal in FP16)."""
        return self.clipped


class IntFormat(WeightFormat):
    """Symmetric INT-``bits`` with a scale per row (``group=None``) or per ``group`` columns."""

    def __init__(self, bits: int, group: int | None = None, name: str | None = None):
        if bits not in (2, 3, 4, 5, 6, 8):
            raise SpecsimError(f"integer format: unsupported bit width {bits}")
        if group is not None and group <= 0:
            raise SpecsimError(f"integer format: group size must be positive, got {group}")
        self.bits = bits
        self.group = group
        self.name = name or f"int{bits}" + (f"_g{group}" if group else "")

    def encode(self, w: torch.Tensor) -> IntTensor:
        check_weight(w)
        rows, cols = w.shape
        g = self.group or cols
        groups = -(-cols // g)
        x = torch.zeros(rows, groups * g, dtype=torch.float32)
        x[:, :cols] = w.detach().float()
        xg = x.reshape(rows, groups, g)
        scales = fp16_scale(xg.abs().amax(dim=2), self.bits)
        codes = quantize_symmetric(xg, scales.unsqueeze(2), self.bits).reshape(rows, groups * g)
        steps = xg.abs() / torch.where(scales > 0, scales, torch.ones_like(scales)).unsqueeze(2)
        clipped = int(((steps > qmax_of(self.bits) + 0.5) & (scales > 0).unsqueeze(2)).sum())
        return IntTensor(shape=(rows, cols), codes=codes, scales=scales, bits=self.bits, group=g, clipped=clipped)

    def decode(self, enc: IntTensor) -> torch.Tensor:
        rows, cols = enc.shape
        groups = enc.scales.shape[1]
        xg = enc.codes.reshape(rows, groups, enc.group).float() * enc.scales.unsqueeze(2)
        return xg.reshape(rows, groups * enc.group)[:, :cols]
