"""decoding.gamma: auto: a draft length per round from the engine's pass costs and the acceptance profile."""

from pathlib import Path

import numpy as np
import pytest
from shape_configs import speq_vs_fp16

from specsim.cli.main import main
from specsim.errors import SpecsimError
from specsim.results.config import accelerators, load_run_config
from specsim.results.decoding import prepare, replay, shape_trace_for
from specsim.results.run import run
from specsim.results.serving_costs import AUTO_GAMMAS
from specsim.trace.schedule import AcceptanceProfile, lockstep_auto_rounds
from specsim.trace.tracefile import PHASES

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path, gamma, alpha=0.8, batch=1, prompts=2, tokens=48, mode="expected") -> Path:
    shape = {"architecture": "llama-2-7b", "acceptance_mode": mode, "prompts": prompts, "prompt_len": 32}
    return speq_vs_fp16(
        tmp_path, {"gamma": gamma, "batch": batch}, {**shape, "max_new_tokens": tokens, "acceptance": {"speq": alpha}}
    )


def _speedup(path) -> float:
    return run(load_run_config(path), progress=False)["workloads"][0]["speedup"]["fp16"]


def test_the_key_takes_auto_or_a_length_and_nothing_else(tmp_path):
    assert load_run_config(_config(tmp_path, "auto")).decoding.gamma == "auto"
    assert load_run_config(_config(tmp_path, 3)).decoding.gamma == 3
    for bad, says in (("Auto", "'auto'"), ("fast", "'auto'"), (0, ">= 1"), (33, "<= 32"), (True, "")):
        with pytest.raises(SpecsimError, match=f"decoding.gamma: expected.*{says}"):
            load_run_config(_config(tmp_path, bad))


def test_lockstep_rounds_share_their_draft_length_and_stop_at_the_token_count():
    profile = AcceptanceProfile.parametric(0.7, AUTO_GAMMAS)
    seen = []

    def choose(n, mean_past):
        seen.append((n, mean_past))
        return 1 + len(seen) % 4

    draws = np.random.default_rng(0)
    plan = lockstep_auto_rounds(profile, [10, 20, 30], 25, 2, choose, lambda i: float(draws.random()))
    (g0, a0), (g1, a1), (g2, a2) = plan
    k = min(len(g0), len(g1))
    assert g0[:k] == g1[:k]  # prompts 0 and 1 decode together: one draft length per round
    assert all(0 <= a <= g for gs, acc in plan for g, a in zip(gs, acc))
    for _, acc in plan:
        assert 1 + sum(a + 1 for a in acc) >= 25 > 1 + sum(a + 1 for a in acc[:-1])
    assert seen[0] == (2, 15.0)  # first round: both sequences, mean cached length (10 + 20) / 2


def test_auto_is_at_least_as_fast_as_every_fixed_length_at_batch_one(tmp_path):
    """Expected acceptance (no sampling noise): auto within 1 % of the best fixed gamma, or better."""
    fixed = {g: _speedup(_config(tmp_path, g, alpha=0.9)) for g in (1, 2, 3, 4, 6, 8)}
    auto = _speedup(_config(tmp_path, "auto", alpha=0.9))
    assert auto >= max(fixed.values()) * 0.99


def test_auto_drafts_longer_when_more_is_accepted_and_shorter_in_big_batches(tmp_path):
    def mean_gamma(alpha, batch):
        report = run(load_run_config(_config(tmp_path, "auto", alpha=alpha, batch=batch, prompts=batch)), False)
        return report["workloads"][0]["acceptance"]["speq"]["mean_gamma"]

    assert mean_gamma(0.95, 1) > mean_gamma(0.6, 1) >= 1
    assert mean_gamma(0.95, 8) < mean_gamma(0.95, 1)  # batched verify passes are compute-bound


def test_a_batch_drafts_together_with_each_member_verifying_its_own_tokens(tmp_path):
    cfg = load_run_config(_config(tmp_path, "auto", alpha=0.7, batch=3, prompts=3, mode="sampled"))
    acc = accelerators(cfg)[0]
    trace = shape_trace_for(acc, cfg.workloads[0].shape, cfg.path, workload="w")
    s = prepare(acc, trace, "w").schedule
    for k in np.flatnonzero(s.pass_phase == PHASES.index("verify")):
        assert len(set(s.member_logits[s.member_pass == k].tolist())) == 1  # gamma + 1 logits for every member
    assert trace.header["gamma_auto"] and set(trace["round_drafted"].tolist()) <= set(range(1, AUTO_GAMMAS + 1))
    assert replay(acc, trace, "w").gamma is None  # no single gamma for Leviathan's formula


def test_serving_takes_auto_from_the_config(tmp_path, capsys):
    path = _config(tmp_path, "auto", alpha=0.8)
    assert main(["serving", str(path), "--rate", "0.05", "--requests", "6", "--json"]) == 0
    assert '"auto"' in capsys.readouterr().out
