"""Draft schemes: grammar, multi-level and hierarchical chains, early exit, quantized drift models."""

import pytest
import torch
from tiny import tiny_llama

from specsim.errors import SpecsimError
from specsim.workload.drafts import build_scheme, early_exit, level_format, parse_scheme
from specsim.workload.speculative import autoregressive_generate, speculative_generate


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(layers=3)


def test_scheme_grammar():
    assert parse_scheme("speq").levels == ("speq",)
    assert parse_scheme("mxfp4>int3_g32").levels == ("mxfp4", "int3_g32")
    assert parse_scheme("multilevel").levels == parse_scheme("multilevel:mxfp4>int3_g32").levels
    h = parse_scheme("hierarchical")
    assert h.target == "int4_g128" and h.depth == 2
    assert parse_scheme("none").mode == "autoregressive"
    assert parse_scheme("olive").target == "olive4" and parse_scheme("tender:8").target == "tender8"
    assert parse_scheme("int4").mode == "drift"
    assert level_format("early:3:speq:e3_row") == "bsfp_draft_e3_row"
    assert level_format("model:smollm2-135m") == "fp16"
    for bad in (
        "fp3",
        "speq:nope",
        "early:x",
        "mxfp4>olive",
        "hierarchical:int4_g128",
        "olive:5",
        "a>>b",
        "hierarchical:fp7/speq",
    ):
        with pytest.raises(SpecsimError):
            parse_scheme(bad)


@pytest.mark.parametrize(
    "scheme,gammas",
    [
        ("mxfp4>int3_g32", [(1, 3), (4, 1), (8, 3)]),
        pytest.param(
            "mxfp4>int3_g32",
            [(g, h) for g in range(1, 9) for h in (1, 3) if (g, h) not in ((1, 3), (4, 1), (8, 3))],
            marks=pytest.mark.slow,
            id="all-gammas",
        ),
        pytest.param("int8>speq>early:1", [(2, 3, 1), (5, 2, 4), (8, 1, 2)], marks=pytest.mark.slow),
        ("speq>early:2:int3_g32", [(4, 4)]),
    ],
)
def test_multilevel_greedy_equals_target_greedy(tiny, scheme, gammas):
    built = build_scheme(tiny, scheme)
    for prompt in ([1, 5, 7], [3, 3, 3, 3, 9, 11, 2]):
        reference = autoregressive_generate(tiny, prompt, 40)
        for gamma in gammas:
            out = speculative_generate(built.target, built.drafts, prompt, gamma, 40)
            assert out.tokens == reference, (scheme, gamma)
            levels = {r.level for r in out.rounds}
            assert levels == set(range(len(gamma)))  # every verifying level ran rounds
            assert all(0 <= r.accepted <= r.drafted for r in out.rounds)


def test_hierarchical_output_is_the_4bit_targets_greedy_output(tiny):
    built = build_scheme(tiny, "hierarchical:int4_g128/int3_g32>early:1:int3_g32")
    reference = autoregressive_generate(built.target, [2, 4, 6], 30)
    assert reference != autoregressive_generate(tiny, [2, 4, 6], 30)  # the 4-bit target really differs
    for gamma in [(1, 1), (4, 2), (8, 8)]:
        assert speculative_generate(built.target, built.drafts, [2, 4, 6], gamma, 30).tokens == reference


def test_early_exit_shares_layers_and_leaves_the_model_intact(tiny):
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        before = tiny(ids).logits
        short = early_exit(tiny, 1)
        assert len(short.model.layers) == 1 and len(tiny.model.layers) == 3
        assert short.model.layers[0] is tiny.model.layers[0]
        assert not torch.equal(short(ids).logits, before)
        assert torch.equal(tiny(ids).logits, before)
    with pytest.raises(SpecsimError):
        early_exit(tiny, 4)


@pytest.mark.parametrize("scheme", ["olive", "tender:8", "int4"])
def test_drift_models_quantize_and_differ_from_fp16(tiny, scheme):
    calibration = torch.randint(0, 97, (1, 64), generator=torch.Generator().manual_seed(0))
    built = build_scheme(tiny, scheme, calibration=lambda: calibration)
    assert not built.drafts and built.plan.mode == "drift"
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert not torch.equal(built.target(ids).logits, tiny(ids).logits)
        assert torch.equal(built.target(ids).logits, built.target(ids).logits)  # deterministic
