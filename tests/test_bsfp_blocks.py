"""BSFP per-block layouts: exhaustive bit-exactness, hand-priced bits, and a slow reference decode."""

import numpy as np
import pytest
import torch

from specsim.workload.formats import fp16
from specsim.workload.formats.bsfp import (
    BSFP,
    LAYOUTS,
    BSFPLayout,
    block_layout,
)

ALL = fp16.all_patterns().reshape(1, -1)

BLOCK_LAYOUTS = [
    *(lay for lay in LAYOUTS.values() if lay.scope == "block"),
    block_layout("lut8", 32),
    block_layout("e3", 64, shift_bits=6, tables=2),
    block_layout("lut8", 32, shift_bits=3, tables=4, select="mse"),
    block_layout("lut8", 48, tables=8, fit="max"),
]
IDS = [lay.name for lay in BLOCK_LAYOUTS]


def reference_shift(w: torch.Tensor, layout: BSFPLayout) -> torch.Tensor:
    """Per-block alignment shift [rows, blocks] computed independently (torch, from the values)."""
    rows, cols = w.shape
    pad = -cols % layout.block
    finite = torch.where(torch.isfinite(w), w.float().abs(), torch.zeros(()))
    peaks = torch.nn.functional.pad(finite, (0, pad)).reshape(rows, -1, layout.block).amax(dim=2)
    ideal = torch.where(peaks > 0, -fp16.floor_log2_abs(peaks.half()), 0)
    if layout.shift_bits >= 6:
        return ideal
    row_peak = peaks.amax(dim=1, keepdim=True)
    row = torch.where(row_peak > 0, -fp16.floor_log2_abs(row_peak.half()), 0)
    return row + torch.where(peaks > 0, (ideal - row).clamp(0, 2**layout.shift_bits - 1), 0)


def per_element(shift: torch.Tensor, layout: BSFPLayout, cols: int) -> torch.Tensor:
    return shift.repeat_interleave(layout.block, dim=1)[:, :cols]


@pytest.mark.parametrize("layout", BLOCK_LAYOUTS, ids=IDS)
@pytest.mark.parametrize("order", ["ascending", "shuffled"])
def test_every_fp16_pattern_roundtrips_per_block(layout, order):
    """All 65,536 patterns: in code order (a block holds neighbouring values) and shuffled into a
    256 x 256 tensor (blocks mix huge, tiny, subnormal and non-finite values, so blocks whose
    maximum is >= 2 align downwards and their inexactly aligned tiny values take the side list)."""
    w = (
        ALL
        if order == "ascending"
        else ALL.reshape(-1)[torch.randperm(ALL.numel(), generator=torch.Generator().manual_seed(0))].reshape(256, 256)
    )
    codec = BSFP(layout)
    enc = codec.encode(w)
    assert torch.equal(fp16.to_bits(codec.decode_fp16(enc)), fp16.to_bits(w))
    shift = reference_shift(w, layout)
    assert torch.equal(enc.shift, shift.to(torch.int32))
    scaled, exact = fp16.scale_pow2_exact(w, per_element(shift, layout, w.shape[1]))
    main = torch.ones(w.numel(), dtype=torch.bool)
    main[enc.side_index] = False
    assert torch.equal(main, (exact & (scaled.float().abs() < 2)).reshape(-1))
    assert enc.outlier_count() > 0 and enc.counts["side_out_of_range"] == enc.outlier_count()
    if order == "shuffled":  # some side entries are tiny values of downward-aligned blocks, not just inf/NaN/huge
        tiny = w.reshape(-1)[enc.side_index].float().abs() < 1
        assert bool(tiny.any())


@pytest.mark.parametrize("layout", BLOCK_LAYOUTS[:3], ids=IDS[:3])
def test_every_fp16_pattern_roundtrips_with_forced_block_shifts_and_selectors(layout):
    g = torch.Generator().manual_seed(1)
    w = ALL.reshape(-1)[torch.randperm(ALL.numel(), generator=g)].reshape(128, 512)
    blocks = -(-512 // layout.block)
    shift = torch.randint(-8, 25, (128, blocks), generator=g)
    select = torch.randint(0, layout.tables, (128, blocks), generator=g)
    codec = BSFP(layout)
    enc = codec.encode(w, shift=shift, select=select)
    assert torch.equal(fp16.to_bits(codec.decode_fp16(enc)), fp16.to_bits(w))
    assert torch.equal(enc.select, select.to(torch.int32))


def _words_reference(codec: BSFP, enc, w: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Slow elementwise decodes: draft from the stored nibbles, and draft recomputed from the weights."""
    rows, cols = w.shape
    block = codec.layout.block
    words, shift, select = enc.words.numpy(), enc.shift.numpy(), enc.select.numpy()
    from_words = np.empty((rows, cols))
    from_values = np.empty((rows, cols))
    for r in range(rows):
        for c in range(cols):
            d, t = int(shift[r, c // block]), int(select[r, c // block])
            remap = enc.remaps[t]
            nib = int(words[r, c]) >> 12
            from_words[r, c] = (-1) ** (nib >> 3) * remap.levels[nib & 7] * 2.0**-d
            x = float(w[r, c])
            u = int(fp16.to_bits(torch.tensor(abs(x) * 2.0**d, dtype=torch.float16)))
            bucket = int(np.searchsorted(remap.edges[1:-1], u, side="right"))
            from_values[r, c] = np.copysign(remap.levels[bucket] * 2.0**-d, x) if x != 0 else 0.0
    return from_words, from_values


@pytest.mark.parametrize("layout", BLOCK_LAYOUTS, ids=IDS)
def test_block_draft_decode_equals_a_slow_reference(layout):
    """Random rows of different scales, a row length that is not a whole number of blocks."""
    g = torch.Generator().manual_seed(2)
    w = (torch.randn(12, 200, generator=g) * torch.logspace(-4, 0, 12)[:, None]).half()
    w[3, 40:80] *= 1e-3  # blocks far below their row's maximum
    w[5, 64:96] = 0
    codec = BSFP(layout)
    enc = codec.encode(w)
    assert enc.outlier_count() == 0
    from_words, from_values = _words_reference(codec, enc, w)
    draft = codec.decode_draft(enc).double().numpy()
    np.testing.assert_allclose(draft, from_words, rtol=1e-7, atol=0)
    np.testing.assert_allclose(draft, from_values, rtol=1e-7, atol=0)
    assert torch.equal(fp16.to_bits(codec.decode_fp16(enc)), fp16.to_bits(w))
    words = enc.words.clone()
    enc.words = (words & 0xF000) | torch.randint(0, 4096, words.shape, dtype=torch.int32, generator=g)
    assert torch.equal(codec.decode_draft(enc), torch.from_numpy(draft).float())  # top nibble only


@pytest.mark.parametrize(
    ("layout", "rows", "cols", "draft_bits"),
    [
        # 4 bits/weight + per block (shift + selector) + per row 8-bit base shift (delta fields) + 8x16 per table
        (block_layout("lut8", 32), 64, 200, 4 * 12800 + 64 * 7 * 8 + 128),
        (
            block_layout("lut8", 32, shift_bits=6, tables=4, select="mse"),
            64,
            200,
            4 * 12800 + 64 * 7 * (6 + 2) + 4 * 128,
        ),
        (
            block_layout("lut8", 32, shift_bits=4, tables=4, select="mse"),
            64,
            256,
            4 * 16384 + 64 * 8 * 6 + 64 * 8 + 4 * 128,
        ),
        (block_layout("lut8", 64, shift_bits=6, tables=2), 10, 128, 4 * 1280 + 10 * 2 * 7 + 2 * 128),
    ],
)
def test_block_layout_bits_per_weight_by_hand(layout, rows, cols, draft_bits):
    w = (torch.randn(rows, cols, generator=torch.Generator().manual_seed(3)) * 0.05).half()
    enc = BSFP(layout).encode(w)
    assert enc.outlier_count() == 0
    assert enc.fetched_bits() == draft_bits
    assert enc.stored_bits() == draft_bits + 12 * rows * cols + layout.tables * 7 * 14
    assert layout.draft_bits_per_weight(rows, cols) == pytest.approx(draft_bits / (rows * cols))


def test_mxfp4_priced_block_layout_costs_4_25_bits_plus_its_tables():
    lay = block_layout("lut8", 32, shift_bits=6, tables=4, select="mse")
    assert lay.draft_bits_per_weight(576, 576) == pytest.approx(4.25 + 4 * 128 / 576**2)
    assert lay.draft_bits_per_weight(576, 576) < 4.2516


def test_error_driven_selector_is_no_worse_than_selection_by_maximum():
    g = torch.Generator().manual_seed(4)
    w = (
        torch.randn(64, 512, generator=g)
        * torch.rand(64, 512 // 32, 1, generator=g).repeat_interleave(32, 2).reshape(64, 512)
    ).half()
    err = {}
    for select in ("max", "mse"):
        codec = BSFP(block_layout("lut8", 32, shift_bits=6, tables=4, select=select))
        err[select] = float(((codec.decode_draft(codec.encode(w)) - w.float()) ** 2).sum())
    assert err["mse"] <= err["max"] * 1.001


@pytest.mark.parametrize("layout", [*LAYOUTS.values(), *BLOCK_LAYOUTS], ids=lambda lay: lay.name)
def test_hardware_side_metadata_bits_match_the_encoders_count(layout):
    """The torch-free per-weight metadata the run checks PE-mode pricing against is the encoder's own
    draft bits per weight of a large tensor, less the 4-bit nibble."""
    from specsim.trace.format_bits import bsfp_layout, bsfp_metadata_bits

    large = 1 << 20  # per-row and per-tensor terms vanish: 8 / 2**20 bits per weight
    assert bsfp_layout(f"bsfp_draft_{layout.name}") == layout.name
    assert bsfp_metadata_bits(layout.name) == pytest.approx(layout.draft_bits_per_weight(large, large) - 4, abs=1e-5)


def test_plain_bsfp_draft_names_the_default_layout():
    from specsim.trace.format_bits import DEFAULT_LAYOUT as HARDWARE_DEFAULT
    from specsim.trace.format_bits import LAYOUT_NAMES, bsfp_layout, bsfp_metadata_bits
    from specsim.workload.formats.bsfp import DEFAULT_LAYOUT

    assert HARDWARE_DEFAULT == DEFAULT_LAYOUT and bsfp_layout("bsfp_draft") == DEFAULT_LAYOUT
    assert LAYOUT_NAMES == tuple(LAYOUTS)  # the torch-free list of named layouts is the encoder's
    for not_a_layout in ("foo_b32", "lut8_b32s9", "lut8_b32_t1", "lut8_b32s8", "lut9_row"):
        assert bsfp_metadata_bits(not_a_layout) is None, not_a_layout
    assert bsfp_layout("mxfp4") is None and bsfp_metadata_bits("no_such_layout") is None
    assert bsfp_metadata_bits(DEFAULT_LAYOUT) == 6 / 32  # 4-bit delta shift + 2-bit selector per 32 weights
