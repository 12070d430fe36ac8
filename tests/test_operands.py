"""Operand traces: hooked operator templates and passes vs the shape-derived ones; architectures; shape traces."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny import tiny_llama

from specsim.errors import SpecsimError
from specsim.trace.architectures import Architecture, load_architecture, shipped_architectures
from specsim.trace.operators import architecture_template, template_arrays
from specsim.trace.schedule import AcceptanceProfile, shape_trace, speculative_steps
from specsim.trace.tracefile import read_trace, summarize, write_trace
from specsim.workload.drafts import build_scheme
from specsim.workload.optrace import OpRecorder
from specsim.workload.speculative import autoregressive_generate, speculative_generate

TINY_ARCH = Architecture(
    "tiny", "llama", hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, vocab=97, tied_embeddings=False
)


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama()


def _steps(recorder, prompt=0):
    return [
        (s.level, ("prefill", "draft", "verify", "decode").index(s.phase), s.tokens, s.past, s.logits)
        for s in recorder.steps
        if s.prompt == prompt
    ]


@pytest.mark.parametrize("gamma", [1, 3, 6])
def test_hooked_passes_and_templates_match_the_shape_derived_ones(tiny, gamma):
    built = build_scheme(tiny, "speq")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    try:
        for i, prompt in enumerate(([1, 5, 7], [3, 3, 3, 3, 9, 11, 2, 4])):
            recorder.prompt = i
            out = speculative_generate(built.target, built.drafts, prompt, gamma, 33, observer=recorder)
            assert _steps(recorder, i) == speculative_steps(len(prompt), [r.accepted for r in out.rounds], gamma)
    finally:
        recorder.remove()
    expected = {
        0: architecture_template(TINY_ARCH, "fp16"),
        1: architecture_template(TINY_ARCH, built.level_formats[1]),
    }
    assert recorder.templates == expected
    # hooks are gone: another run records nothing more
    n = len(recorder.steps)
    speculative_generate(built.target, built.drafts, [1, 2], gamma, 5)
    assert len(recorder.steps) == n


def test_gemm_work_per_token_equals_the_weight_count():
    arch = load_architecture("llama-2-7b")
    ops = architecture_template(arch, "fp16")
    macs = sum(op.n * op.k * op.count for op in ops if op.kind == "gemm")
    assert macs == arch.decoder_weights + arch.vocab * arch.hidden
    assert 6.5e9 < macs < 6.8e9  # Llama-2-7B: 6.74 B parameters, 6.48 B in decoder linears + 0.13 B lm_head


def test_multilevel_and_plain_decoding_record_every_level(tiny):
    built = build_scheme(tiny, "mxfp4>int3_g32")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    out = speculative_generate(built.target, built.drafts, [4, 5, 6], [4, 2], 20, observer=recorder)
    recorder.remove()
    assert {s.level for s in recorder.steps} == {0, 1, 2}
    assert sum(s.level == 0 and s.phase == "verify" for s in recorder.steps) == len(out.target_rounds)
    plain = OpRecorder([tiny], ["fp16"])
    tokens = autoregressive_generate(tiny, [4, 5, 6], 10, observer=plain)
    plain.remove()
    assert [(s.phase, s.tokens) for s in plain.steps] == [("prefill", 3)] + [("decode", 1)] * (len(tokens) - 1)


def test_early_exit_level_shares_hooks_with_the_target(tiny):
    built = build_scheme(tiny, "early:1")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    speculative_generate(built.target, built.drafts, [4, 5, 6], 3, 12, observer=recorder)
    recorder.remove()
    assert len(recorder.templates[1]) < len(recorder.templates[0])
    assert {op.layer for op in recorder.templates[1]} == {-1, 0}


def test_shipped_architectures_load_and_reject_bad_files(tmp_path):
    names = shipped_architectures()
    for required in (
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3.1-8b",
        "opt-6.7b",
        "opt-13b",
        "mistral-7b",
        "qwen2.5-7b",
    ):
        assert required in names
    assert load_architecture("llama-2-70b").kv_heads == 8
    good = {
        "name": "a",
        "family": "llama",
        "hidden": 64,
        "layers": 2,
        "heads": 4,
        "kv_heads": 2,
        "ffn": 128,
        "vocab": 10,
        "tied_embeddings": False,
    }
    for key, value, match in [
        ("hidden", -1, "hidden"),
        ("family", "rnn", "family"),
        ("heads", 5, "heads"),
        ("colour", 1, "colour"),
        ("tied_embeddings", "no", "tied_embeddings"),
    ]:
        bad = dict(good, **{key: value})
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(SpecsimError, match=match):
            load_architecture(str(path))
    with pytest.raises(SpecsimError, match="unknown architecture"):
        load_architecture("gpt-5")


@pytest.mark.parametrize(
    "edit, key",
    [
        ({"sliding_window": -512}, "sliding_window"),
        ({"sliding_window": "512"}, "sliding_window"),
        ({"sliding_window": True}, "sliding_window"),
        ({"sliding_window": 512.5}, "sliding_window"),
        ({"sliding_window": 1 << 30}, "sliding_window"),
        ({"sliding_window_pattern": 6}, "sliding_window_pattern"),  # a pattern without a window
        ({"sliding_window": 512, "sliding_window_pattern": 1}, "sliding_window_pattern"),
        ({"sliding_window": 512, "sliding_window_pattern": -6}, "sliding_window_pattern"),
        ({"head_dim": "256"}, "head_dim"),
    ],
)
def test_a_bad_sliding_window_is_one_line_naming_the_file_and_key(tmp_path, edit, key):
    path = tmp_path / "windowed.yaml"
    shipped = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "specsim/data/architectures/gemma3-270m.yaml").read_text()
    )
    for k in ("sliding_window", "sliding_window_pattern"):
        shipped.pop(k)
    path.write_text(yaml.safe_dump({**shipped, **edit}))
    with pytest.raises(SpecsimError) as err:
        load_architecture(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: '{key}'") and "\n" not in message, message


def test_windows_by_layer_and_in_the_shape_template():
    gemma, mistral, llama = (load_architecture(n) for n in ("gemma3-270m", "mistral-7b", "llama-2-7b"))
    assert [gemma.window(i) for i in range(18)] == ([512] * 5 + [0]) * 3  # every 6th layer full
    assert {mistral.window(i) for i in range(32)} == {4096} and {llama.window(i) for i in range(32)} == {0}
    assert gemma.head_dim == 256 != gemma.hidden // gemma.heads
    ops = architecture_template(gemma, "fp16")
    assert len(ops) == 18 * 17 + 2  # per layer the 13 ops of Llama plus q_norm, k_norm, pre/post feed-forward norms
    assert {(op.layer, op.window) for op in ops if op.kind in ("attn_qk", "softmax", "attn_pv")} == {
        (i, 0 if i % 6 == 5 else 512) for i in range(18)
    }
    assert all(op.window == 0 for op in ops if op.kind not in ("attn_qk", "softmax", "attn_pv"))
    # weights: q/o are 640 x 1024 (4 heads of 256), k/v 640 x 256, the MLP 3 x 640 x 2048, lm_head tied
    per_layer = 2 * 640 * 1024 + 2 * 640 * 256 + 3 * 640 * 2048
    assert sum(op.n * op.k for op in ops if op.kind == "gemm") == 18 * per_layer + 262144 * 640
    arrays, _, _ = template_arrays({0: ops})
    assert arrays["op_window"].tolist() == [op.window for op in ops]


def test_shape_trace_is_labelled_and_follows_its_profile(tmp_path):
    arch = load_architecture("mistral-7b")
    header, arrays = shape_trace(arch, "mxfp4", 4, AcceptanceProfile.parametric(0.7, 4), [64] * 32, 128, seed=1)
    path = tmp_path / "shape.npz"
    write_trace(path, header, arrays)
    trace = read_trace(path)
    assert trace.header["source"] == "shape" and "SHAPE-DERIVED" in trace.header["shape_note"]
    s = summarize(trace)
    assert s.alpha == pytest.approx(0.7, abs=0.03)
    assert (trace["generated_len"] == 128).all()
    assert path.stat().st_size < 5 * 2**20
    # replaying the sampled rounds gives back the same passes
    for p in range(3):
        acc = trace["round_accepted"][trace["round_prompt"] == p].tolist()
        m = trace["step_prompt"] == p
        rec = list(
            zip(
                *(trace[k][m].tolist() for k in ("step_level", "step_phase", "step_tokens", "step_past", "step_logits"))
            )
        )
        assert rec == speculative_steps(64, acc, 4)
    from_trace = AcceptanceProfile.from_trace(trace, 6)
    assert len(from_trace.position_acceptance) == 6 and "shape.npz" in from_trace.source


def test_template_arrays_index_their_tables():
    arrays, names, formats = template_arrays({0: architecture_template(TINY_ARCH, "fp16")})
    assert names[arrays["op_name"][0]] == "input_layernorm" and formats == ["fp16"]
    assert np.all(arrays["op_weight_format"][arrays["op_kind"] != 0] == -1)
