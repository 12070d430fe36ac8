"""The draft's lm_head as a choice: the workload side (real acceptance with that lm_head, lossless) and the
hardware side (its PE mode and bytes, against a hand formula from the architecture file)."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from shape_configs import speq_vs_fp16
from tiny import tiny_llama

from specsim.errors import SpecsimError
from specsim.results.config import element_bits, load_run_config
from specsim.results.run import run
from specsim.trace.architectures import load_architecture
from specsim.workload.drafts import build_scheme, lm_head_format
from specsim.workload.formats import get_format
from specsim.workload.formats.bsfp import BSFP, DEFAULT_LAYOUT
from specsim.workload.speculative import autoregressive_generate, speculative_generate

ARCH = load_architecture("llama-2-7b")
DRAFT_BITS = 4 + 6 / 32  #: BSFP top nibble + a 4-bit block shift and a 2-bit table selector per 32 weights


@pytest.fixture(scope="module")
def tiny():
    model = tiny_llama(layers=2)
    model.config.tie_word_embeddings = True
    model.lm_head.weight = model.model.embed_tokens.weight  # tied, as Gemma 3 and SmolLM2
    return model


def test_choices_resolve_to_formats():
    assert lm_head_format("speq", "fp16") == "fp16"
    assert lm_head_format("speq", "same") == f"bsfp_draft_{DEFAULT_LAYOUT}"
    assert lm_head_format("speq:e3_row", "same") == "bsfp_draft_e3_row"
    assert lm_head_format("mxfp4", "same") == "mxfp4"
    assert lm_head_format("mxfp4", "speq") == f"bsfp_draft_{DEFAULT_LAYOUT}"
    assert lm_head_format("tree(speq,eagle)", "int8") == "int8"
    assert lm_head_format("model:other", "same") == "fp16"
    for bad in ("early:3", "model:x", "tree(speq,eagle)", "fp7", "none", "olive"):
        with pytest.raises(SpecsimError, match="--draft-lm-head"):
            lm_head_format("speq", bad)


def test_shape_traces_resolve_the_same_choices_without_a_model():
    from specsim.trace.schedule import shape_lm_head_format

    assert shape_lm_head_format("fp16", "speq", "bsfp_draft") == "fp16"
    assert shape_lm_head_format("same", "mxfp4", "mxfp4") == "mxfp4"
    assert shape_lm_head_format("speq", "mxfp4", "mxfp4") == "bsfp_draft"
    assert shape_lm_head_format("int8", "speq", "bsfp_draft") == "int8"
    for bad in ("none", "early:3", "tree(speq,eagle)", "olive"):
        with pytest.raises(SpecsimError, match=f"--draft-lm-head '{re.escape(bad)}': expected fp16, same"):
            shape_lm_head_format(bad, "speq", "bsfp_draft")
    with pytest.raises(SpecsimError, match="--draft-lm-head int8: draft scheme 'none' has no draft level"):
        shape_lm_head_format("int8", "none", None)
    with pytest.raises(SpecsimError, match="'speq:bogus': unknown BSFP layout 'bogus'"):
        shape_lm_head_format("speq:bogus", "speq", "bsfp_draft")


@pytest.mark.parametrize("choice", ["same", "int8", "mxfp4"])
def test_draft_lm_head_is_the_format_view_and_leaves_the_rest_alone(tiny, choice):
    embed = tiny.model.embed_tokens.weight.detach().clone()
    built = build_scheme(tiny, "speq", draft_lm_head=choice)
    draft = built.drafts[0]
    fmt = built.lm_head_formats[1]
    fp16_head = tiny.lm_head.weight.detach().half()
    want = (BSFP(DEFAULT_LAYOUT).quantize_draft if fmt.startswith("bsfp") else get_format(fmt).quantize)(fp16_head)
    assert built.lm_head_formats[0] == "fp16"
    assert torch.equal(draft.lm_head.weight, want.float())
    assert not torch.equal(draft.lm_head.weight, tiny.lm_head.weight)
    # the tied embedding is untied in the draft only: lookups still read the FP16 rows, the target is untouched
    assert torch.equal(draft.model.embed_tokens.weight, embed)
    assert torch.equal(tiny.lm_head.weight, embed) and tiny.lm_head.weight is tiny.model.embed_tokens.weight
    # its own module: hooks on the target's lm_head (the operand recorder's) do not see the draft's
    assert draft.lm_head._forward_hooks is not tiny.lm_head._forward_hooks


def test_a_quantized_draft_lm_head_keeps_decoding_lossless(tiny):
    prompt = [5, 17, 3, 44, 9]
    want = autoregressive_generate(tiny, prompt, 24)
    for choice in ("same", "int8"):
        built = build_scheme(tiny, "speq", draft_lm_head=choice)
        assert speculative_generate(built.target, built.drafts, prompt, 3, 24).tokens == want, choice


def test_schemes_without_a_draft_refuse_a_draft_lm_head(tiny):
    with pytest.raises(SpecsimError, match="no draft level"):
        build_scheme(tiny, "none", draft_lm_head="int8")


def test_element_bits_of_format_names():
    assert [element_bits(f) for f in ("fp16", "bsfp_draft", "bsfp_draft_e3_row", "mxfp4", "int8", "int4_g128")] == [
        16,
        4,
        4,
        4,
        8,
        4,
    ]
    assert element_bits("olive4") == 4 and element_bits("made_up") is None


def _config(tmp_path: Path, heads: list[str], modes: list[str] | None = None) -> Path:
    decoding = {"gamma": 4, "lm_head_formats": heads, **({"lm_head_modes": modes} if modes is not None else {})}
    shape = {
        "architecture": "llama-2-7b",
        "prompts": 1,
        "prompt_len": 128,
        "max_new_tokens": 24,
        "acceptance_mode": "expected",
        "acceptance": {"speq": 0.8},
    }
    return speq_vs_fp16(tmp_path, decoding, shape)


def _hand_draft_bytes(head_bits: float, tokens: np.ndarray, past: np.ndarray) -> np.ndarray:
    """DRAM bytes of draft passes from the architecture alone: decoder weights' top nibble with the BSFP
    layout's per-block metadata, lm_head at ``head_bits``, K and V read over the context and written for the
    new tokens (FP16)."""
    kv_per_token = 2 * ARCH.layers * ARCH.kv_heads * ARCH.head_dim * 2
    weights = ARCH.decoder_weights * DRAFT_BITS / 8 + ARCH.vocab * ARCH.hidden * head_bits / 8
    return weights + kv_per_token * (past + tokens) + kv_per_token * tokens


@pytest.mark.parametrize(
    ("heads", "modes", "head_bits"),
    [
        (["fp16", "fp16"], None, 16 + 6 / 32),  # FP16 values read from BSFP words (fp16_mode bsfp16)
        (["fp16", "bsfp_draft"], None, DRAFT_BITS),
        (["fp16", "int8"], ["fp16", "w8a16"], 8),
    ],
)
def test_draft_pass_bytes_follow_the_lm_head_format(tmp_path, heads, modes, head_bits):
    from specsim.results.config import accelerators
    from specsim.results.decoding import shape_trace_for

    cfg = load_run_config(_config(tmp_path, heads, modes))
    report = run(cfg, progress=False)
    acc = next(a for a in accelerators(cfg) if a.name == "speq")
    trace = shape_trace_for(acc, cfg.workloads[0].shape, cfg.path, workload="w")
    assert trace.header["lm_head_formats"] == heads
    draft = (trace["step_level"] == 1) & (trace["step_phase"] == 1)
    hand = _hand_draft_bytes(head_bits, trace["step_tokens"][draft], trace["step_past"][draft]).mean()
    simulated = report["workloads"][0]["accelerators"]["speq"]["steps"]["draft"]["dram_bytes"]
    assert hand <= simulated <= hand * 1.003, (heads, hand, simulated)


def test_lm_head_formats_the_modes_cannot_run_are_refused(tmp_path):
    with pytest.raises(SpecsimError, match=r"lm_head_formats\[1\].*give decoding.lm_head_modes\[1\]"):
        load_run_config(_config(tmp_path, ["fp16", "int8"]))
    with pytest.raises(SpecsimError, match=r"lm_head_modes\[1\]: PE mode 'quarter' .* cannot run a 'int8' lm_head"):
        load_run_config(_config(tmp_path, ["fp16", "int8"], ["fp16", "quarter"]))
    with pytest.raises(SpecsimError, match=r"lm_head_modes\[1\]: PE mode 'int8' .* 8-bit activations"):
        load_run_config(_config(tmp_path, ["fp16", "int8"], ["fp16", "int8"]))
    with pytest.raises(SpecsimError, match=r"lm_head_formats\[0\]: the target's lm_head is FP16"):
        load_run_config(_config(tmp_path, ["int8", "int8"]))
    with pytest.raises(SpecsimError, match=r"lm_head_modes\[1\]: PE mode 'w9' is not one of"):
        load_run_config(_config(tmp_path, ["fp16", "int8"], ["fp16", "w9"]))
    with pytest.raises(SpecsimError, match=r"lm_head_modes\[1\]: level 1's lm_head is FP16"):
        load_run_config(_config(tmp_path, ["fp16", "fp16"], ["", "w8a16"]))


def test_fp16_mode_must_run_fp16_values(tmp_path):
    path = _config(tmp_path, ["fp16", "fp16"])
    with pytest.raises(SpecsimError, match=r"decoding.fp16_mode: PE mode 'quarter' cannot run FP16 weights"):
        load_run_config(path, ["decoding.fp16_mode=quarter"])


def test_a_trace_with_another_draft_lm_head_is_refused(tmp_path):
    """Acceptance recorded with an FP16 lm_head is not the acceptance of a BSFP-lm_head draft."""
    root = Path(__file__).resolve().parents[1]
    path = _config(tmp_path, ["fp16", "bsfp_draft"])
    cfg = yaml.safe_load(path.read_text())
    cfg["workloads"][0]["shape"]["acceptance"] = {"speq": str(root / "traces" / "smollm2-135m_speq_g4.npz")}
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(SpecsimError, match="lm_head"):
        run(load_run_config(path), progress=False)


def test_a_mode_priced_for_another_bsfp_layout_is_refused(tmp_path):
    """quarter and bsfp16 price the default layout's 6/32 metadata bits; a per-row layout has none, so a
    run of it is refused until the modes are priced for it, and then its draft reads 4 bits per weight."""
    path = _config(tmp_path, ["fp16", "fp16"])
    cfg = yaml.safe_load(path.read_text())
    cfg["decoding"]["formats"] = ["fp16", "bsfp_draft_lut8_row_max"]
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(SpecsimError, match=r"layout 'lut8_row_max' \(4 \+ 0 metadata.*'quarter'.*4\.1875.*to 4 "):
        run(load_run_config(path), progress=False)
    sets = ["hardware.modes.quarter.weight_bits=4", "hardware.modes.bsfp16.weight_bits=16"]
    with pytest.raises(SpecsimError, match=r"'bsfp16' \(decoding.fp16_mode\) prices 16\.1875"):
        run(load_run_config(path, sets[:1]), progress=False)
    report = run(load_run_config(path, sets), progress=False)
    draft = report["workloads"][0]["accelerators"]["speq"]["steps"]["draft"]["dram_bytes"]
    assert (
        draft
        < run(load_run_config(_config(tmp_path, ["fp16", "fp16"])), progress=False)["workloads"][0]["accelerators"][
            "speq"
        ]["steps"]["draft"]["dram_bytes"]
    )


def test_one_mode_cannot_price_two_bsfp_layouts(tmp_path):
    path = _config(tmp_path, ["fp16", "bsfp_draft_lut8_row_max"], ["fp16", "quarter"])
    with pytest.raises(SpecsimError, match=r"reads BSFP layouts lut8_b32s4_t4e, lut8_row_max in one PE mode 'quarter'"):
        run(load_run_config(path), progress=False)
