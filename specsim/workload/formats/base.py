"""Common interface of every number format.

A format turns a weight tensor into *stored codes* (integer tensors plus metadata) and back:

    encoded = fmt.encode(w)          # stored codes: the bits the accelerator holds in DRAM
    w_hat   = fmt.decode(encoded)    # float32 values the datapath computes with
    w_hat   = fmt.quantize(w)        # shortcut: decode(encode(w)), same dtype as w

Weights follow ``nn.Linear`` convention: shape ``[out_features, in_features]``; the reduction
(input-feature) axis is the last one. Every encoded tensor knows how many bits it occupies in
storage (``stored_bits``) and how many a draft pass fetches (``fetched_bits``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from specsim.errors import SpecsimError


@dataclass
class EncodedTensor:
    """Stored codes of one tensor. Subclasses add their code and metadata tensors."""

    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def stored_bits(self) -> int:
        """Total bits held in memory for this tensor, metadata included (bits)."""
        raise NotImplementedError

    def fetched_bits(self) -> int:
        """Bits a pass using this format reads from memory (bits); equal to storage by default."""
        return self.stored_bits()

    def outlier_count(self) -> int:
        """Elements outside the format's normal path (see each format's docstring)."""
        return 0


class WeightFormat(ABC):
    """A bit-exact number format with encode -> stored codes -> decode."""

    name: str = "format"

    @abstractmethod
    def encode(self, w: torch.Tensor) -> EncodedTensor:
        """Encode a 2-D floating-point weight tensor ``[out, in]`` into stored codes."""

    @abstractmethod
    def decode(self, enc: EncodedTensor) -> torch.Tensor:
        """Decode stored codes back to float32 values."""

    def quantize(self, w: torch.Tensor) -> torch.Tensor:
        """Quantize-dequantize view: ``decode(encode(w))`` in ``w``'s dtype and shape."""
        return self.decode(self.encode(w)).to(w.dtype).reshape(w.shape)


def check_weight(w: torch.Tensor, what: str = "weight") -> torch.Tensor:
    """Validate a weight tensor: 2-D, floating point and finite. Raises :class:`SpecsimError`."""
    if not torch.is_floating_point(w):
        raise SpecsimError(f"{what}: expected a floating-point tensor, got {w.dtype}")
    if w.dim() != 2:
        raise SpecsimError(f"{what}: expected a 2-D [out, in] tensor, got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()):
        bad = int((~torch.isfinite(w)).sum())
        raise SpecsimError(f"{what}: {bad} non-finite value(s) (inf/NaN); formats need finite weights")
    return w
