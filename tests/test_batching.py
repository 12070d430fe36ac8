"""Batched decoding: lockstep schedules, the batched operator table against hand formulas, and replays."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shape_configs import speq_vs_fp16

from specsim.engine import simulate
from specsim.hardware.lowering import steps_table
from specsim.hardware.ops import KIND_GEMM, KIND_KV_GEMM
from specsim.results.config import accelerators, differences, load_run_config
from specsim.results.decoding import pass_table, prepare, replay
from specsim.results.run import run
from specsim.trace.architectures import load_architecture
from specsim.trace.batching import batch_schedule, lockstep_keys
from specsim.trace.tracefile import PHASES, read_trace

ROOT = Path(__file__).resolve().parents[1]
SPEQ_TRACE = ROOT / "traces" / "smollm2-135m_speq_g4.npz"
GAMMA = 4


def _config(tmp_path, alpha=1.0, batch=1, prompts=4, tokens=1 + 5 * 6, baseline_overrides=None, arch="smollm2-135m"):
    """SPEQ and FP16 on a shape workload whose every round accepts with i.i.d. ``alpha``."""
    shape = {"architecture": arch, "prompts": prompts, "prompt_len": 24, "max_new_tokens": tokens}
    return speq_vs_fp16(
        tmp_path, {"gamma": GAMMA, "batch": batch}, {**shape, "acceptance": {"speq": alpha}}, baseline_overrides
    )


def _replays(path):
    cfg = load_run_config(path)
    from specsim.results.decoding import shape_trace_for

    out = {}
    for acc in accelerators(cfg):
        trace = shape_trace_for(acc, cfg.workloads[0].shape, cfg.path, workload=cfg.workloads[0].name)
        out[acc.name] = (acc, trace, replay(acc, trace, cfg.workloads[0].name))
    return out


# ---- schedules ------------------------------------------------------------------------------------


def test_batch_one_keeps_every_pass_alone_and_in_trace_order():
    for name in ("speq_g4", "hierarchical_g4", "fp16"):
        trace = read_trace(ROOT / "traces" / f"smollm2-135m_{name}.npz")
        s = batch_schedule(trace, 1)
        assert np.array_equal(s.member_step, np.arange(trace["step_level"].size))
        assert np.array_equal(s.member_pass, np.arange(trace["step_level"].size))


def test_lockstep_keys_of_a_one_level_round_and_a_chain():
    inf = np.iinfo(np.int64).max
    # prefill, then two rounds of gamma 2: draft, draft, verify
    keys = lockstep_keys(np.array([0, 1, 1, 0, 1, 1, 0]), np.zeros(7, np.int64))
    assert keys.tolist() == [[0, inf], [1, 0], [1, 1], [1, inf], [2, 0], [2, 1], [2, inf]]
    # a chain: level 2 drafts, level 1 verifies (inner rounds), level 0 verifies the round
    keys = lockstep_keys(np.array([0, 2, 1, 2, 1, 0]), np.zeros(6, np.int64))
    assert keys.tolist() == [[0, inf, inf], [1, 0, 0], [1, 0, inf], [1, 1, 0], [1, 1, inf], [1, inf, inf]]


@pytest.mark.parametrize("name", ["speq_g4", "hierarchical_g4", "multilevel_g4", "fp16"])
def test_every_sequence_keeps_its_own_passes_in_order(name):
    """Batching only merges: each sequence's passes appear once each, in the order it ran them, and every
    batched pass holds one level and one phase."""
    trace = read_trace(ROOT / "traces" / f"smollm2-135m_{name}.npz")
    s = batch_schedule(trace, 3)
    assert sorted(s.member_step.tolist()) == list(range(trace["step_level"].size))
    for p in np.unique(s.member_prompt):
        steps = s.member_step[s.member_prompt == p]
        assert np.all(np.diff(steps) > 0)
        assert np.all(np.diff(s.member_pass[s.member_prompt == p]) > 0)  # one pass per sequence at a time
    assert np.array_equal(trace["step_level"][s.member_step], s.pass_level[s.member_pass])
    assert np.array_equal(trace["step_phase"][s.member_step], s.pass_phase[s.member_pass])
    first = np.searchsorted(s.member_pass, s.member_pass)  # each pass's first member
    assert s.pass_members.max() == 3 and np.array_equal(s.member_prompt // 3, s.member_prompt[first] // 3)


def test_kv_lengths_diverge_as_the_acceptance_events_say():
    """In batched verify pass r every sequence has cached its prompt plus (accepted + 1) per earlier round:
    its own acceptance, so the members' lengths differ."""
    trace = read_trace(SPEQ_TRACE)
    s = batch_schedule(trace, 5)
    verify = PHASES.index("verify")
    top = trace["round_level"] == 0
    diverged = False
    for p in range(trace["prompt_len"].size):
        accepted = trace["round_accepted"][top & (trace["round_prompt"] == p)].astype(np.int64)
        expected_past = int(trace["prompt_len"][p]) + np.concatenate([[0], np.cumsum(accepted + 1)[:-1]])
        mine = (s.member_prompt == p) & (s.pass_phase[s.member_pass] == verify)
        assert s.member_past[mine].tolist() == expected_past.tolist()
    for k in np.flatnonzero(s.pass_phase == verify):
        pasts = s.member_past[s.member_pass == k]
        diverged |= len(set(pasts.tolist())) > 1
    assert diverged


# ---- the batched operator table -------------------------------------------------------------------


def _hand_macs(arch, tokens: int, kv: int, logits: int) -> int:
    """MACs of one sequence's pass from the architecture alone: every weight once per token, QK^T and PV
    over the KV length per head, lm_head per logits row."""
    h, hd, ffn = arch.hidden, arch.head_dim, arch.ffn
    q, kvd = arch.heads * hd, arch.kv_heads * hd
    linear = h * q + 2 * h * kvd + q * h + 3 * h * ffn
    attention = 2 * arch.heads * hd * kv
    return arch.layers * (tokens * linear + tokens * attention) + logits * arch.vocab * h


def test_batched_table_macs_and_rows_follow_the_hand_formula(tmp_path):
    arch = load_architecture("smollm2-135m")
    cfg = load_run_config(_config(tmp_path, alpha=0.6, batch=3, prompts=3))
    acc = accelerators(cfg)[0]
    from specsim.results.decoding import shape_trace_for

    trace = shape_trace_for(acc, cfg.workloads[0].shape, cfg.path, workload="w")
    prep = prepare(acc, trace, "w")
    s = prep.schedule
    table, starts = pass_table(prep, tuple(acc.hardware.modes))
    c = table.columns
    macs = np.where(np.isin(c["kind"], (KIND_GEMM, KIND_KV_GEMM)), c["m"] * c["n"] * c["k"] * c["batch"], 0)
    per_pass = np.add.reduceat(macs, starts)
    for k in range(s.passes):
        mine = s.member_pass == k
        hand = sum(
            _hand_macs(arch, int(t), int(p + t), int(lg))
            for t, p, lg in zip(s.member_tokens[mine], s.member_past[mine], s.member_logits[mine])
        )
        assert per_pass[k] == hand
    # weight GEMMs run once per pass over all its tokens; attention once per sequence
    ends = np.append(starts[1:], len(c["kind"]))
    for k in (0, s.passes // 2, s.passes - 1):
        rows = slice(starts[k], ends[k])
        members = int((s.member_pass == k).sum())
        gemm = c["kind"][rows] == KIND_GEMM
        assert np.all(c["m"][rows][gemm][:-1] == s.pass_tokens[k])  # all but lm_head
        assert (c["kind"][rows] == KIND_KV_GEMM).sum() == 2 * arch.layers * members


def test_batch_one_replay_is_the_per_pass_table_of_the_trace():
    """With batch 1 the replay simulates exactly the trace's own passes (the unbatched table)."""
    cfg = load_run_config(ROOT / "hwconfigs" / "speq.yaml")
    acc = accelerators(cfg)[0]
    trace = read_trace(SPEQ_TRACE)
    prep = prepare(acc, trace, "smollm2-135m")
    ops, _ = steps_table(
        prep.templates,
        tuple(acc.hardware.modes),
        trace["step_level"],
        trace["step_tokens"],
        trace["step_past"],
        trace["step_logits"],
    )
    assert replay(acc, trace, "smollm2-135m", prep).total_cycles == simulate(acc.hardware, ops).total_cycles


# ---- replays --------------------------------------------------------------------------------------


def test_alpha_one_batched_speedup_equals_the_pass_cost_formula(tmp_path):
    """alpha = 1: every sequence accepts gamma per round, so all B sequences stay in every pass, the
    schedule has the counts the formula says, and the decode speedup over FP16 is (gamma+1) FP16 decode
    passes over gamma draft passes plus a verify pass (the first draft pass of each sequence is its
    draft prefill, counted with the prefill)."""
    batch, rounds = 4, 6
    out = _replays(_config(tmp_path, alpha=1.0, batch=batch, prompts=batch, tokens=1 + (GAMMA + 1) * rounds))
    speq, fp16 = out["speq"][2], out["fp16"][2]
    assert speq.max_batch == batch and fp16.max_batch == batch
    draft, verify = speq.pass_stats(1, "draft"), speq.pass_stats(0, "verify")
    decode = fp16.pass_stats(0, "decode")
    assert (draft.count, verify.count, decode.count) == (rounds * GAMMA - 1, rounds, (GAMMA + 1) * rounds)
    assert np.all(prepare(*out["speq"][:2], "w").schedule.pass_members == batch)
    speq_time = draft.count * draft.mean_cycles + verify.count * verify.mean_cycles
    fp16_time = decode.count * decode.mean_cycles
    simulated = (fp16.per_prompt.decode_cycles.sum() / fp16.per_prompt.decode_tokens.sum()) / (
        speq.per_prompt.decode_cycles.sum() / speq.per_prompt.decode_tokens.sum()
    )
    assert simulated == pytest.approx(fp16_time / speq_time, rel=1e-12)
    # the textbook form counts gamma draft passes in every round: one more in 6 rounds (about 1/24 of them)
    textbook = (GAMMA + 1) * decode.mean_cycles / (GAMMA * draft.mean_cycles + verify.mean_cycles)
    assert simulated == pytest.approx(textbook, rel=0.05) and simulated > textbook


def test_batching_is_timing_only_and_amortises_weights(tmp_path):
    """The same sequences at batch 4: same tokens and acceptance; the KV cache of 4 identical sequences is
    4 times one's; throughput rises and no sequence gets its tokens sooner than alone."""
    one = _replays(_config(tmp_path, alpha=1.0, batch=1, prompts=4))
    four = _replays(_config(tmp_path, alpha=1.0, batch=4, prompts=4))
    for name in ("speq", "fp16"):
        a, b = one[name][2], four[name][2]
        assert (a.tokens, a.alpha, a.prompts) == (b.tokens, b.alpha, b.prompts)
        assert b.residency.kv_cache == 4 * a.residency.kv_cache
        assert b.residency.weights == a.residency.weights
        assert b.metrics["tokens_per_s"] > 1.5 * a.metrics["tokens_per_s"]
        assert b.metrics["decode_latency_per_token_s"] >= a.metrics["decode_latency_per_token_s"]


def test_baselines_take_the_main_batch_and_an_override_is_a_named_difference(tmp_path):
    cfg = load_run_config(_config(tmp_path, batch=3))
    main, fp16 = accelerators(cfg)
    assert fp16.config.decoding.batch == 3 and differences(main, fp16) == []
    cfg = load_run_config(_config(tmp_path, batch=3, baseline_overrides={"decoding": {"batch": 1}}))
    main, fp16 = accelerators(cfg)
    assert fp16.config.decoding.batch == 1
    assert differences(main, fp16) == ["decoding.batch 1 (speq: 3)"]


def test_a_workload_smaller_than_the_batch_says_so(tmp_path):
    report = run(load_run_config(ROOT / "hwconfigs" / "speq.yaml", ["decoding.batch=8"]), progress=False)
    m = report["workloads"][0]["accelerators"]["speq"]
    assert (m["batch"], m["max_batch"]) == (8, 5)  # the real trace holds 5 prompts
    shape = report["workloads"][1]["accelerators"]["speq"]
    assert (shape["batch"], shape["max_batch"]) == (8, 8)  # a shape workload samples 8 sequences


@pytest.mark.parametrize("value", ["0", "257", "two"])
def test_bad_batch_is_one_line_exit_2(tmp_path, value):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "specsim.cli.main", "run", str(ROOT / "hwconfigs" / "speq.yaml"), "--set"]
        + [f"decoding.batch={value}", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "decoding.batch" in proc.stderr and not out.exists()
