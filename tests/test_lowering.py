"""Trace template -> hardware operator table -> engine, on the committed SmolLM2 speq trace."""

from pathlib import Path

import numpy as np

from specsim.engine import simulate
from specsim.hardware.config import load_hardware
from specsim.hardware.lowering import step_table
from specsim.trace.architectures import load_architecture
from specsim.trace.tracefile import read_trace

TRACE = Path(__file__).resolve().parents[1] / "traces" / "smollm2-135m_speq_g4.npz"


def _level(trace, level):
    sel = trace["op_level"] == level
    return {k: trace[k][sel] for k in trace.arrays if k.startswith("op_")}


def test_draft_and_verify_steps_of_a_real_trace():
    trace = read_trace(TRACE)
    hw = load_hardware("speq")
    modes = tuple(hw.modes)
    arch = load_architecture("smollm2-135m")
    formats = trace.header["formats"]
    format_modes = {"fp16": "fp16", formats[1]: "quarter"}
    phase = trace["step_phase"]
    draft = int(np.flatnonzero((trace["step_level"] == 1) & (phase == 1))[0])
    verify = int(np.flatnonzero((trace["step_level"] == 0) & (phase == 2))[0])
    results = {}
    for name, s in (("draft", draft), ("verify", verify)):
        level = int(trace["step_level"][s])
        tokens, past = int(trace["step_tokens"][s]), int(trace["step_past"][s])
        ops = step_table(
            _level(trace, level),
            formats,
            format_modes,
            modes,
            tokens,
            past + tokens,
            int(trace["step_logits"][s]),
            kv_streams=arch.kv_heads,
        )
        r = simulate(hw, ops)
        results[name] = (r, tokens, past)
        # MACs == the analytical count of the architecture for this step
        kv = past + tokens
        linear = arch.decoder_weights * tokens + arch.vocab * arch.hidden * int(trace["step_logits"][s])
        attention = 2 * arch.layers * arch.heads * tokens * kv * arch.head_dim
        assert r.actions().macs.get("fp16", 0) + r.actions().macs.get("quarter", 0) == linear + attention
    draft_r, verify_r = results["draft"][0], results["verify"][0]
    # the draft reads the top-nibble plane of the decoder weights (a quarter) and the BSFP layout's per-block
    # metadata (a 4-bit shift and a 2-bit selector per 32 weights); lm_head stays FP16
    lm_head = arch.vocab * arch.hidden * 2
    assert draft_r.mapping.stream_bytes[draft_r.mapping.mode == modes.index("quarter")].sum() == (
        arch.decoder_weights * (4 + 6 / 32) / 8
    )
    assert verify_r.mapping.stream_bytes[verify_r.ops.kind == 0].sum() == arch.decoder_weights * 2 + lm_head
    # attention runs in FP16 inside a quarter-mode draft pass (two switches per layer), then the FP16 lm_head
    assert draft_r.mode_switches.sum() == 2 * arch.layers + 1
    assert draft_r.total_cycles < verify_r.total_cycles


# ---- sliding-window attention (Gemma 3 270M: a 512-token window in 15 of its 18 layers) ------------------


def test_a_windowed_step_attends_its_window_by_hand():
    """A step of T = 5 tokens after P = 1000 cached ones: a sliding layer's queries see positions
    1000 + i - 511 .. 1000 + i (i = 0..4), together positions 489 .. 1004 = 516 keys (= w + T - 1); a full
    layer sees all 1005. QK^T and PV each do heads x T x keys x head_dim MACs; each reads its K or V:
    keys x head_dim x kv_heads FP16 values."""
    from specsim.hardware.ops import KIND_KV_GEMM
    from specsim.trace.operators import architecture_template, template_arrays

    arch = load_architecture("gemma3-270m")
    arrays, names, formats = template_arrays({0: architecture_template(arch, "fp16")})
    hw = load_hardware("speq")
    modes = tuple(hw.modes)
    template = {k: v for k, v in arrays.items() if k != "op_level"}
    tokens, past = 5, 1000
    ops = step_table(template, formats, {"fp16": "fp16"}, modes, tokens, past + tokens, 1, kv_streams=arch.kv_heads)
    sliding_keys, full_keys = 516, 1005
    qk = ops.kind == KIND_KV_GEMM
    keys = np.where(ops.n[qk] == arch.head_dim, ops.k[qk], ops.n[qk])  # QK^T: N = keys; PV: K = keys
    assert sorted(set(keys.tolist())) == [sliding_keys, full_keys]
    assert (keys == sliding_keys).sum() == 2 * 15 and (keys == full_keys).sum() == 2 * 3
    r = simulate(hw, ops)
    attention_macs = 2 * arch.heads * tokens * arch.head_dim * (15 * sliding_keys + 3 * full_keys)
    linear_macs = arch.decoder_weights * tokens + arch.vocab * arch.hidden
    assert r.actions().macs["fp16"] == linear_macs + attention_macs
    kv_read = 2 * arch.kv_heads * arch.head_dim * 2 * (15 * sliding_keys + 3 * full_keys)  # K and V, 2 bytes
    assert r.mapping.stream_bytes[r.ops.kind == KIND_KV_GEMM].sum() == kv_read
    # the prefill of 600 tokens: every query of a sliding layer sees at most 512 keys, together all 600
    ops = step_table(template, formats, {"fp16": "fp16"}, modes, 600, 600, 1, kv_streams=arch.kv_heads)
    assert set(ops.n[(ops.kind == KIND_KV_GEMM) & (ops.k == arch.head_dim)].tolist()) == {600}


def test_windowed_layers_keep_at_most_their_window_of_kv_cache(tmp_path):
    """FP16 decoding of one 600-token prompt on Gemma 3 270M: a full layer keeps all 600 + 7 K/V entries at
    the last pass; a sliding layer keeps most during the prefill (all 600 pass through it at once), and
    511 + 1 afterwards. KV bytes = 2 (K, V) x kv_heads x head_dim x 2 bytes x entries, per layer."""
    from shape_configs import speq_vs_fp16

    from specsim.results.config import accelerators, load_run_config
    from specsim.results.decoding import prepare, shape_trace_for

    shape = {"architecture": "gemma3-270m", "prompts": 1, "prompt_len": 600, "max_new_tokens": 8}
    cfg = load_run_config(speq_vs_fp16(tmp_path, {"gamma": 4}, {**shape, "acceptance": {"speq": 0.8}}))
    fp16 = next(a for a in accelerators(cfg) if a.name == "fp16")
    trace = shape_trace_for(fp16, cfg.workloads[0].shape, cfg.path, workload="w")
    resident = prepare(fp16, trace, "w").residency
    arch = load_architecture("gemma3-270m")
    per_entry = 2 * arch.kv_heads * arch.head_dim * 2
    assert resident.kv_cache == per_entry * (3 * (600 + 8 - 1) + 15 * 600)
    without_windows = per_entry * 18 * (600 + 8 - 1)
    assert resident.kv_cache < without_windows
