"""Request-level serving (specsim serving): queueing identities, memoised costs, acceptance extremes, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from specsim.cli.main import main
from specsim.results.config import load_run_config
from specsim.results.serving import Acceptance, Policy, serve
from specsim.results.serving_costs import bucket_error
from specsim.results.serving_requests import Request, poisson_requests, read_requests
from specsim.results.serving_run import prepare_all, shape_workload, summarize

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "hwconfigs" / "sweep_llama2_7b.yaml")
EXAMPLE = ROOT / "specsim" / "data" / "requests" / "azure_conv_fit_1000.csv"


def _served(overrides=(), max_batch=3, gamma=None, longest=4096, longest_prompt=4096):
    cfg = load_run_config(CONFIG, list(overrides))
    served, policy = prepare_all(
        cfg, shape_workload(cfg, None), Policy(max_batch, 2048, gamma=gamma), longest, longest_prompt
    )
    return {s.accelerator.name: s for s in served}, policy


@pytest.fixture(scope="module")
def served():
    return _served()


def _run(s, requests, policy, seed=0):
    return serve(s.accelerator.name, s.costs, requests, policy, s.acceptance, s.gamma, seed)


def test_littles_law_and_conservation(served):
    accs, policy = served
    requests = poisson_requests(0.1, 300, seed=3)
    for name in ("fp16", "speq"):
        summary = summarize(_run(accs[name], requests, policy), 0.1)
        assert summary.finished == 300 and summary.unfinished == summary.not_arrived == 0
        # time-averaged count in the system = measured arrival rate x mean latency (exact: everyone left)
        assert summary.mean_in_system == pytest.approx(summary.arrival_rate_rps * summary.mean_latency_s, rel=1e-9)
        # and the nominal rate, within sampling error of 300 exponential gaps (sd ~ 6%)
        assert summary.mean_in_system == pytest.approx(0.1 * summary.mean_latency_s, rel=0.25)


def test_horizon_reports_unfinished_and_not_arrived(served):
    accs, policy = served
    requests = poisson_requests(0.2, 100, seed=1)
    run = _run(accs["speq"], requests, Policy(policy.max_batch, policy.token_budget, horizon_s=150.0))
    s = summarize(run, 0.2)
    assert s.finished + s.unfinished + s.not_arrived == 100
    assert s.unfinished > 0 and s.not_arrived > 0 and s.span_s == 150.0
    assert all(r.finished == (r.finish_s <= 150.0) for r in run.requests)


def test_memoised_costs_equal_the_engine_at_bucket_points(served):
    accs, _ = served
    for name, level, tokens in (("speq", 0, 5), ("speq", 1, 1), ("fp16", 0, 1)):
        costs = accs[name].costs
        for n, past in ((1, 64), (3, 512), (2, 2048)):
            full = np.full(n, tokens)
            exact = costs.exact(level, full, np.full(n, past), full)
            assert costs.step(level, n, tokens, float(past), tokens) == exact
    costs = accs["fp16"].costs
    prompts = [128, 128]
    assert costs.prefill(0, prompts) == costs.exact(0, np.array(prompts), np.zeros(2, int), np.ones(2, int))


def test_bucket_error_is_small_and_conservative(served):
    accs, _ = served
    err = bucket_error(accs["fp16"].costs, 0, 1, 3, 2048, samples=6, seed=0)
    # one quantum (64 tokens) of attention over a memory-bound decode pass of a 7B model: well under 2%
    assert err.max_abs < 0.02 and err.mean >= 0


def test_hand_formula_batch_one_low_rate(served):
    """Max batch 1, requests far apart: TTFT = the prefill pass, TPOT = one decode pass at the prompt's length."""
    accs, _ = served
    s = accs["fp16"]
    requests = [Request(i, 1000.0 * i, 64, 2) for i in range(3)]
    run = _run(s, requests, Policy(1, 2048))
    prefill = s.costs.exact(0, np.array([64]), np.array([0]), np.array([1])).seconds
    decode = s.costs.exact(0, np.array([1]), np.array([64]), np.array([1])).seconds
    for r in run.requests:
        assert r.first_token_s - r.arrival_s == pytest.approx(prefill, rel=1e-12)
        assert r.finish_s - r.first_token_s == pytest.approx(decode, rel=1e-12)


def test_acceptance_extremes():
    one, zero = Acceptance.of(1.0, 8), Acceptance.of(0.0, 8)
    assert all(one.accepted(u, 4) == 4 for u in (0.0, 0.5, 0.999))
    assert all(zero.accepted(u, 4) == 0 for u in (0.0, 0.5, 0.999))
    assert one.expected_tokens(4) == 5 and zero.expected_tokens(4) == 1


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_zero_slower_alpha_one_faster_than_fp16_at_batch_one(alpha):
    accs, policy = _served([f"workloads.0.shape.acceptance.speq={alpha}"], max_batch=1)
    requests = [Request(i, 1000.0 * i, 64, 40) for i in range(2)]
    tpot = {n: summarize(_run(accs[n], requests, policy), math.nan).tpot_p50_s for n in ("speq", "fp16")}
    assert (tpot["speq"] > tpot["fp16"]) if alpha == 0 else (tpot["speq"] < tpot["fp16"])


def test_gamma_auto_stays_in_range(served):
    accs, policy = _served(gamma=0)
    run = _run(accs["speq"], poisson_requests(0.1, 30, seed=0), policy)
    assert run.gamma == "auto" and 1 <= run.gamma_sum / run.gamma_iterations <= 8


def test_example_request_file_reads():
    requests = read_requests(EXAMPLE)
    assert len(requests) == 1000 and all(r.prompt_tokens + r.output_tokens <= 4096 for r in requests)
    assert 600 < np.median([r.prompt_tokens for r in requests]) < 1500


def test_cli_writes_folder_and_json(tmp_path, capsys):
    out = tmp_path / "serving"
    args = [CONFIG, "--rates", "0.05,0.1", "--requests", "12", "--max-batch", "2", "--out", str(out), "--json"]
    assert main(["serving", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["rows"]) == 12  # 2 rates x 6 accelerators
    assert {p.name for p in out.iterdir()} == {".specsim-serving.json", "serving.csv", "serving.json", "requests.csv"}
    assert main(["serving", *args]) == 0  # its own folder may be replaced
    assert main(["plot", str(out), "--kind", "serving", "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 0


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--rate", "-1"], "--rate -1: expected a positive"),
        (["--arrivals", "nowhere.csv"], "--arrivals nowhere.csv: file not found"),
        (["--max-batch", "0"], "--max-batch 0: expected 1..256"),
        (["--max-batch", "100000"], "--max-batch 100000: expected 1..256"),
        (["--gamma", "often"], "--gamma often: expected auto"),
        (["--horizon", "-5"], "--horizon -5.0: expected seconds > 0"),
    ],
)
def test_bad_options_one_line_exit_2(extra, needle, capsys, tmp_path):
    out = tmp_path / "o"
    assert main(["serving", CONFIG, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specsim: error: ") and needle in err and err.count("\n") == 1
    assert not out.exists()


def test_malformed_request_rows(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,prompt_tokens,output_tokens\n0.5,100,20\n1.0,abc,20\n")
    assert main(["serving", CONFIG, "--arrivals", str(bad)]) == 2
    assert "bad.csv: line 3: prompt_tokens 'abc': expected an integer" in capsys.readouterr().err
    bad.write_text('{"arrival_s": 0, "prompt_tokens": 5}\n')
    bad = bad.rename(tmp_path / "bad.jsonl")
    assert main(["serving", CONFIG, "--arrivals", str(bad)]) == 2
    assert "bad.jsonl: line 1: expected an object with keys" in capsys.readouterr().err


def test_out_never_touches_a_users_folder_or_file(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    assert main(["serving", CONFIG, "--requests", "3", "--out", str(user)]) == 2
    assert "did not write" in capsys.readouterr().err and (user / "notes.txt").read_text() == "keep"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["serving", CONFIG, "--requests", "3", "--out", str(afile / "sub")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and afile.read_text() == "x"
