"""The audit: every shipped accelerator on the Llama-2-7B shape against formulas written by hand.

For each accelerator (FP16, SPEQ, OliVe W8A8, Tender W8A8, ML-SpecQD, the hierarchical chain) the DRAM
bytes of every kind of pass (draft, verify, decode) equal a formula written here from the architecture
file alone: decoder weights x bits / 8 + the FP16 lm_head + the FP16 KV cache read at that context +
the K/V entries written + format metadata (inside the bits per weight). Nothing below calls specsim's
mapping code to get them. Every pass takes at least its DRAM floor, and memory-bound passes finish
within 10 % of max(DRAM floor, compute floor). The paper setting's SPEQ-over-Tender ratio matches the
hand calculation from bytes per pass and the expected tokens per round.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml

from specsim.results.config import load_run_config
from specsim.results.run import run
from specsim.trace.architectures import load_architecture

ROOT = Path(__file__).resolve().parents[1]
ARCH = load_architecture("llama-2-7b")
GAMMA = 4
#: bits per decoder weight each accelerator's passes read (metadata included), by pass kind
BITS = {
    "fp16": {"decode": 16},
    "speq": {"draft": 4 + 6 / 32, "verify": 16 + 6 / 32},  # BSFP words + a 4-bit shift and 2-bit selector per 32
    "olive": {"decode": 8},
    "tender": {"decode": 8},
    "mlspecqd": {"draft": 4.25, "verify": 16},
    "hierarchical": {"draft": 3.5, "verify": 4.125},
}
#: bits per lm_head weight: FP16 values, read from BSFP words (with their metadata) on SPEQ
HEAD_BITS = {"speq": 16 + 6 / 32}
PHASE_OF = {"decode": (0, "decode"), "verify": (0, "verify"), "draft": (1, "draft")}


def _config(tmp_path: Path) -> Path:
    """The Llama-2-7B shape (one prompt of 128 tokens, 32 new, expected acceptance) on every shipped
    accelerator: OliVe and Tender at W8A8 as in the paper setting."""
    base = ROOT / "hwconfigs"
    cfg = {
        "name": "speq",
        "hardware": {"include": "speq"},
        "decoding": {
            "kind": "speculative",
            "draft": "speq",
            "gamma": GAMMA,
            "level_modes": ["fp16", "quarter"],
            "fp16_mode": "bsfp16",
            "formats": ["fp16", "bsfp_draft"],
        },
        "baselines": {
            "fp16": str(base / "fp16.yaml"),
            "olive": str(base / "paper/olive8.yaml"),
            "tender": str(base / "paper/tender8.yaml"),
            "mlspecqd": str(base / "mlspecqd.yaml"),
            "hierarchical": str(base / "hierarchical.yaml"),
        },
        "workloads": [
            {
                "name": "llama-2-7b",
                "shape": {
                    "architecture": "llama-2-7b",
                    "prompts": 1,
                    "prompt_len": 128,
                    "max_new_tokens": 32,
                    "acceptance_mode": "expected",
                    "acceptance": {"speq": 0.9, "mlspecqd": 0.9, "hierarchical": 0.9},
                },
            }
        ],
    }
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    path = _config(tmp_path_factory.mktemp("audit"))
    from specsim.results.config import accelerators
    from specsim.results.decoding import shape_trace_for

    cfg = load_run_config(path)
    report = run(cfg, progress=False)
    accs = {a.name: a for a in accelerators(cfg)}
    traces = {
        name: shape_trace_for(a, cfg.workloads[0].shape, cfg.path, workload="llama-2-7b") for name, a in accs.items()
    }
    return cfg, report, traces, accs


def hand_pass_bytes(bits: float, tokens: np.ndarray, past: np.ndarray, head_bits: float = 16) -> np.ndarray:
    """DRAM bytes of passes of ``tokens`` new tokens after ``past`` cached ones, from the architecture:
    decoder weights at ``bits``, lm_head at ``head_bits`` (FP16 values), K and V read over the whole context
    and written for the new tokens, FP16."""
    kv_per_token = 2 * ARCH.layers * ARCH.kv_heads * ARCH.head_dim * 2  # K and V, FP16, all layers
    weights = ARCH.decoder_weights * bits / 8 + ARCH.vocab * ARCH.hidden * head_bits / 8
    return weights + kv_per_token * (past + tokens) + kv_per_token * tokens


def hand_compute_cycles(lanes: int, tokens: np.ndarray, past: np.ndarray, logits: np.ndarray, pes: int) -> np.ndarray:
    """Compute floor of those passes: decoder MACs on ``lanes`` MACs per PE, lm_head and attention in FP16."""
    attention = 2 * ARCH.layers * ARCH.heads * ARCH.head_dim * tokens * (past + tokens)
    return ARCH.decoder_weights * tokens / (pes * lanes) + (ARCH.vocab * ARCH.hidden * logits + attention) / pes


LANES = {
    "fp16": {"decode": 1},
    "speq": {"draft": 4, "verify": 1},
    "olive": {"decode": 1},
    "tender": {"decode": 1},
    "mlspecqd": {"draft": 4, "verify": 1},
    "hierarchical": {"draft": 4, "verify": 4},
}


@pytest.mark.parametrize("acc", list(BITS))
def test_dram_bytes_per_pass_equal_the_hand_formula(audited, acc):
    cfg, report, traces, _ = audited
    trace = traces[acc]
    metrics = report["workloads"][0]["accelerators"][acc]
    for kind, bits in BITS[acc].items():
        level, phase = PHASE_OF[kind]
        sel = (trace["step_level"] == level) & (
            trace["step_phase"] == ["prefill", "draft", "verify", "decode"].index(phase)
        )
        hand = hand_pass_bytes(bits, trace["step_tokens"][sel], trace["step_past"][sel], HEAD_BITS.get(acc, 16)).mean()
        simulated = metrics["steps"][kind]["dram_bytes"]
        # DRAM transfers round up to 64-byte bursts per tile: at most a fraction of a percent more
        assert hand <= simulated <= hand * 1.003, (acc, kind, hand, simulated)


@pytest.mark.parametrize("acc", list(BITS))
def test_pass_time_sits_on_its_floor_when_memory_bound(audited, acc):
    cfg, report, traces, accs = audited
    trace = traces[acc]
    hw = accs[acc].hardware
    bytes_per_s = hw.dram.bandwidth_gbps * 1e9
    metrics = report["workloads"][0]["accelerators"][acc]
    for kind, bits in BITS[acc].items():
        level, phase = PHASE_OF[kind]
        sel = (trace["step_level"] == level) & (
            trace["step_phase"] == ["prefill", "draft", "verify", "decode"].index(phase)
        )
        tokens, past, logits = trace["step_tokens"][sel], trace["step_past"][sel], trace["step_logits"][sel]
        dram_floor = hand_pass_bytes(bits, tokens, past, HEAD_BITS.get(acc, 16)).mean() / bytes_per_s
        compute_floor = hand_compute_cycles(LANES[acc][kind], tokens, past, logits, hw.pes).mean() / (
            hw.clock_ghz * 1e9
        )
        seconds = metrics["steps"][kind]["seconds"]
        assert seconds >= dram_floor, (acc, kind)
        assert dram_floor > compute_floor  # every decode-time pass is memory-bound
        assert seconds <= 1.10 * max(dram_floor, compute_floor), (acc, kind, seconds / dram_floor)


def test_fp16_decode_step_of_the_audit(audited):
    """The independent audit's Llama-2-7B FP16 decode step: 12,952 MB of decoder weights + 262 MB of
    lm_head + the KV cache, read at the DRAM bandwidth."""
    cfg, report, _, _ = audited
    assert ARCH.decoder_weights * 2 == pytest.approx(12_952e6, rel=1e-3)
    assert ARCH.vocab * ARCH.hidden * 2 == pytest.approx(262e6, rel=1e-2)
    step = report["workloads"][0]["accelerators"]["fp16"]["steps"]["decode"]
    assert step["seconds"] == pytest.approx(step["dram_bytes"] / (cfg.hardware.dram.bandwidth_gbps * 1e9), rel=0.01)


def test_paper_setting_speq_over_tender_matches_the_hand_calculation():
    """SPEQ over Tender W8A8 in the paper setting (Llama-2-7B, alpha 0.976, gamma 4): per token, Tender
    reads its 8-bit weights once; SPEQ reads gamma draft passes (top nibble + per-block metadata) and one
    verify of its BSFP words per round
    and yields E[tau] = (1 - a^(g+1)) / (1 - a) tokens. Both memory-bound, so bytes over bandwidth."""
    cfg = load_run_config(
        ROOT / "hwconfigs/paper/speq.yaml",
        [
            "workloads=[{name: llama-2-7b, shape: {architecture: llama-2-7b, prompts: 1, "
            "prompt_len: 128, max_new_tokens: 128, acceptance_mode: expected, "
            "acceptance: {speq: 0.976}}}]"
        ],
    )
    report = run(cfg, progress=False)
    alpha, ctx = 0.976, np.array([128 + 64])  # mid-generation context
    tau = (1 - alpha ** (GAMMA + 1)) / (1 - alpha)
    one = np.array([1])
    tender = hand_pass_bytes(8, one, ctx - 1)[0]
    draft = hand_pass_bytes(BITS["speq"]["draft"], one, ctx - 1, HEAD_BITS["speq"])[0]
    verify = hand_pass_bytes(BITS["speq"]["verify"], np.array([GAMMA + 1]), ctx - 1, HEAD_BITS["speq"])[0]
    hand = tender / ((GAMMA * draft + verify) / tau)
    assert 1.1 < hand < 1.25
    assert report["workloads"][0]["speedup"]["tender"] == pytest.approx(hand, rel=0.05)
