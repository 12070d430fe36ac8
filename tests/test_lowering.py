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
    # the draft reads the top-nibble plane of the decoder weights (a quarter), lm_head stays FP16
    lm_head = arch.vocab * arch.hidden * 2
    assert (
        draft_r.mapping.stream_bytes[draft_r.mapping.mode == modes.index("quarter")].sum()
        == arch.decoder_weights * 2 // 4
    )
    assert verify_r.mapping.stream_bytes[verify_r.ops.kind == 0].sum() == arch.decoder_weights * 2 + lm_head
    # attention runs in FP16 inside a quarter-mode draft pass (two switches per layer), then the FP16 lm_head
    assert draft_r.mode_switches.sum() == 2 * arch.layers + 1
    assert draft_r.total_cycles < verify_r.total_cycles
