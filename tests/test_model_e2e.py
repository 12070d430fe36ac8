"""End to end on the real SmolLM2-135M (installed by the project's setup; converted once to the cache)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from specsim.workload.formats import fp16
from specsim.workload.formats.bsfp import BSFP, LAYOUTS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smollm2():
    from specsim.workload.models import decoder_linears, load_model

    loaded = load_model("smollm2-135m")
    return loaded, decoder_linears(loaded.model)


def test_model_is_the_expected_architecture(smollm2):
    loaded, linears = smollm2
    cfg = loaded.model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size) == (30, 576, 1536, 49152)
    assert len(linears) == 210
    w = linears[0][1].weight
    assert torch.equal(w, w.half().float())  # the FP16 target


def test_bsfp_roundtrip_is_bit_exact_on_real_layers(smollm2):
    _, linears = smollm2
    for name, lin in linears[::29]:  # every 29th layer: all projection kinds over several depths
        w = lin.weight.detach().half()
        for layout in LAYOUTS:
            codec = BSFP(layout)
            enc = codec.encode(w)
            assert torch.equal(fp16.to_bits(codec.decode_fp16(enc)), fp16.to_bits(w)), (name, layout)


def test_formats_command_on_one_real_decoder_layer():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # no model hub needed
    proc = subprocess.run(
        [sys.executable, "-m", "specsim.cli.main", "formats", "--model", "smollm2-135m", "--json", "--layers", "7"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    f = json.loads(proc.stdout)["formats"]
    assert {"bsfp_full", "mxfp4", "olive4", "olive8", "tender4", "tender8", "int4_g128", "int8"} <= set(f)
    assert all(v["roundtrip_mismatches"] == 0 for k, v in f.items() if k.startswith("bsfp"))
    assert f["mxfp4"]["bits_per_weight"] == 4.25
    for name in f:
        if name.startswith("bsfp_draft"):
            per_block = LAYOUTS[name.removeprefix("bsfp_draft_")].scope == "block"  # + shifts/selectors per block
            assert 4.0 <= f[name]["bits_per_weight"] < (4.26 if per_block else 4.1)
            assert f[name]["stored_bits_per_weight"] >= 16
            assert 5 < f[name]["sqnr_db"] < 30
    assert f["olive8"]["sqnr_db"] > f["olive4"]["sqnr_db"] + 15
    assert f["int8"]["sqnr_db"] > f["int4_g128"]["sqnr_db"] > f["int4"]["sqnr_db"]
    assert f["tender4"]["activation_sqnr_db"] is not None and f["int8"]["activation_sqnr_db"] > 20


def test_greedy_agreement_is_one_for_the_lossless_view_and_restores_weights(smollm2):
    from specsim.workload import format_report as fr
    from specsim.workload.prompts import shipped_text

    loaded, linears = smollm2
    model, tok = loaded.model, loaded.tokenizer
    ids = tok(shipped_text("calibration"), return_tensors="pt").input_ids[:, :96]
    before = [lin.weight.detach().clone() for _, lin in linears]
    with torch.no_grad():
        reference = model(ids).logits[0].argmax(dim=-1)
    seen = {}
    fr.evaluate_weights(
        [(n, lin.weight) for n, lin in linears],
        ["bsfp_full", "bsfp_draft_e3"],
        on_format=lambda name, approx: seen.setdefault(
            name, fr.greedy_agreement(model, linears, ids, approx, reference)
        ),
    )
    assert seen["bsfp_full"] == 1.0
    assert 0.0 <= seen["bsfp_draft_e3"] < 1.0
    assert all(torch.equal(b, lin.weight) for b, (_, lin) in zip(before, linears))


@pytest.mark.parametrize(
    "scheme,gammas", [("speq", (1, 4, 8)), ("mxfp4", (4,)), ("multilevel", ((4, 2),)), ("hierarchical", ((3, 3),))]
)
def test_speculative_greedy_equals_target_greedy_on_real_model(smollm2, scheme, gammas):
    from specsim.workload.drafts import build_scheme
    from specsim.workload.prompts import encode_prompt
    from specsim.workload.speculative import autoregressive_generate, speculative_generate

    loaded, _ = smollm2
    built = build_scheme(loaded.model, scheme)
    prompt = encode_prompt(loaded.tokenizer, "Question: what is the capital of Italy? Answer:")
    reference = autoregressive_generate(built.target, prompt, 12)
    for gamma in gammas:
        out = speculative_generate(built.target, built.drafts, prompt, gamma, 12)
        assert out.tokens == reference, gamma
        assert sum(r.accepted for r in out.rounds) > 0  # a 4-bit self-draft does get tokens accepted


def test_speculative_sampling_is_lossless_on_real_model(smollm2):
    """Chi-square (0.1 %) of the first speculated token after a fixed prefix vs the target's distribution."""
    from test_speculative import _chi2, _chi2_critical

    from specsim.workload.drafts import build_draft
    from specsim.workload.speculative import SamplingConfig, speculative_round

    loaded, _ = smollm2
    draft = build_draft(loaded.model, "speq")
    cfg = SamplingConfig("sample", temperature=1.0, top_p=0.95)
    prefix = loaded.tokenizer("Once upon a time, in a small village by the sea, there lived an old").input_ids
    with torch.no_grad():
        p = cfg.probs(loaded.model(torch.tensor([prefix])).logits[0, -1].float())
        q = cfg.probs(draft(torch.tensor([prefix])).logits[0, -1].float())
    assert 0.05 < float((p - q).abs().sum()) / 2  # the draft really differs, so rejections happen
    n = 300
    counts = torch.zeros(p.numel(), dtype=torch.float64)
    for seed in range(n):
        counts[speculative_round(loaded.model, draft, prefix, 2, cfg, seed=seed)[0]] += 1
    stat, df = _chi2(counts, p)
    assert stat < _chi2_critical(df)
    stat_q, df_q = _chi2(counts, q)  # and the same samples are not the draft's distribution
    assert stat_q > stat


def test_operand_trace_of_real_model_matches_its_shape(smollm2):
    from specsim.trace.architectures import load_architecture
    from specsim.trace.operators import architecture_template
    from specsim.trace.schedule import speculative_steps
    from specsim.workload.drafts import build_scheme
    from specsim.workload.optrace import OpRecorder
    from specsim.workload.speculative import speculative_generate

    loaded, _ = smollm2
    built = build_scheme(loaded.model, "speq")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    prompt = loaded.tokenizer("def fibonacci(n):").input_ids
    out = speculative_generate(built.target, built.drafts, prompt, 4, 24, observer=recorder)
    recorder.remove()
    arch = load_architecture("smollm2-135m")
    assert recorder.templates == {
        0: architecture_template(arch, "fp16"),
        1: architecture_template(arch, built.level_formats[1]),
    }
    steps = [
        (s.level, ("prefill", "draft", "verify", "decode").index(s.phase), s.tokens, s.past, s.logits)
        for s in recorder.steps
    ]
    assert steps == speculative_steps(len(prompt), [r.accepted for r in out.rounds], 4)


def test_drift_run_reports_agreement_and_perplexity(tmp_path):
    out = tmp_path / "olive.npz"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "specsim.cli.main",
            "trace",
            "--draft",
            "olive",
            "--limit",
            "2",
            "--max-new-tokens",
            "8",
            "--no-layer-stats",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    from specsim.trace.tracefile import read_trace

    trace = read_trace(out)
    drift = trace.header["drift"]
    assert trace.header["mode"] == "drift" and trace.header["activation_formats"] == ["olive4"]
    assert 0 <= drift["token_agreement"] <= 1 and 0 <= drift["teacher_forced_agreement"] <= 1
    assert drift["perplexity"] > drift["perplexity_fp16"] > 1  # W4A4 OliVe is lossy
    assert (trace["step_phase"] == 3).sum() == trace["generated_len"].sum() - 2  # decode passes


def test_trace_command_is_deterministic_and_inspectable(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "specsim.cli.main",
        "trace",
        "--draft",
        "mxfp4",
        "--gamma",
        "3",
        "--limit",
        "2",
        "--max-new-tokens",
        "12",
        "--no-layer-stats",
    ]
    digests = []
    for name in ("a.npz", "b.npz"):
        proc = subprocess.run(cmd + ["-o", str(tmp_path / name)], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        info = subprocess.run(
            [sys.executable, "-m", "specsim.cli.main", "trace", "--inspect", str(tmp_path / name), "--json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        out = json.loads(info.stdout)
        assert out["header"]["draft"] == "mxfp4" and out["summary"]["rounds"] > 0
        assert 0 <= out["summary"]["alpha"] <= 1 and len(out["summary"]["position_acceptance"]) == 3
        digests.append(out["header"]["payload_sha256"])
    assert digests[0] == digests[1]
