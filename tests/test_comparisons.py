"""Comparisons that survive an audit: baseline modelling, like for like, power, capacity, confidence."""

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from specsim.engine import simulate
from specsim.hardware.config import load_hardware
from specsim.hardware.energy import energy_table_for, load_energy_table
from specsim.hardware.ops import OpTable
from specsim.results.config import load_run_config
from specsim.results.run import run
from specsim.results.stats import geomean, ratio_of_ratios, t_quantile

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "specsim.cli.main", *args], capture_output=True, text=True, timeout=600
    )


def _gemm(hw, m, n, k, mode, per_tile=0):
    ops = OpTable.from_rows(
        [{"kind": "gemm", "m": m, "n": n, "k": k, "mode": mode, "extra_cycles_per_output_tile": per_tile}],
        tuple(hw.modes),
    )
    return simulate(hw, ops, ideal_memory=True).mapping


# ---- 1. Tender's shifts: one per group boundary per output tile --------------------------------------


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_tender_shifts_once_per_group_boundary_per_output_tile(dataflow):
    hw = load_hardware("tender").with_array(64, 64, dataflow)
    m, n, k, g = 5, 11008, 4096, 8
    shift = load_run_config(ROOT / "hwconfigs" / "tender.yaml").decoding.method_params.shift_cycles
    extra = _gemm(hw, m, n, k, "int8", (g - 1) * shift).compute_cycles[0] - _gemm(hw, m, n, k, "int8").compute_cycles[0]
    # output tiles, by hand: ws and is fold K on the rows (K folds share one tile); os streams K in time
    tiles = {"ws": math.ceil(n / 64), "is": math.ceil(m / 64), "os": math.ceil(m / 64) * math.ceil(n / 64)}[dataflow]
    assert extra == (g - 1) * shift * tiles


def test_tender_w8a8_decode_sits_on_its_dram_floor():
    """The audit's figure: Tender W8A8 decode of Llama-2-7B within a few % of its DRAM floor."""
    cfg = load_run_config(
        ROOT / "hwconfigs/paper/tender8.yaml",
        ["workloads=[{name: l7, shape: {architecture: llama-2-7b, prompts: 1, prompt_len: 128, max_new_tokens: 8}}]"],
    )
    step = run(cfg, progress=False)["workloads"][0]["accelerators"]["tender"]["steps"]["decode"]
    floor = step["dram_bytes"] / (cfg.hardware.dram.bandwidth_gbps * 1e9)
    assert floor <= step["seconds"] <= 1.02 * floor


# ---- 2. Stationary-operand preload in bits per column ------------------------------------------------


def test_preload_time_scales_with_weight_width():
    hw = load_hardware("tender")
    rows, cols, width = hw.array.rows, hw.array.cols, hw.array.preload_bits_per_column
    for mode, bits in (("fp16", 16), ("int8", 8)):
        # one token (T = 1 < preload): every fold lasts its preload, by hand
        preload = math.ceil(rows * hw.modes[mode].lanes * bits / width)
        folds = math.ceil(4096 / (rows * hw.modes[mode].lanes)) * math.ceil(4096 / cols)
        assert _gemm(hw, 1, 4096, 4096, mode).compute_cycles[0] == folds * preload + preload + rows + cols - 2
    assert hw.modes["int8"].lanes == 1 and 2 * math.ceil(rows * 8 / width) == math.ceil(rows * 16 / width)


@pytest.mark.parametrize("gbps", [512, 1024, 1536])
def test_w8_decode_follows_bandwidth_not_the_preload_path(gbps):
    """An 8-bit weight fold loads twice as many rows per cycle as an FP16 one, so a W8 GEMV stays
    bandwidth-bound at any bandwidth the preload path can feed (it used to stall at 2x FP16's bytes)."""
    hw = load_hardware("tender")
    hw = replace(hw, dram=replace(hw.dram, bandwidth_gbps=float(gbps)))
    ops = OpTable.from_rows([{"kind": "gemm", "m": 1, "n": 11008, "k": 4096, "mode": "int8"}], tuple(hw.modes))
    r = simulate(hw, ops)
    floor = 11008 * 4096 / hw.dram_bytes_per_cycle
    assert floor <= r.total_cycles <= 1.03 * floor + 500


# ---- 3. Energy and power: one derivation ---------------------------------------------------------------


def test_leakage_is_power_and_every_table_derives_it_alike():
    tables = {n: load_energy_table(n) for n in ("default-28nm", "olive-28nm", "tender-28nm")}
    shared = ("sram_points", "sram_leakage", "leakage_density", "vector_lane_area", "vector_per_lane_cycle")
    for key in shared:
        assert len({repr(getattr(t, key)) for t in tables.values()}) == 1, key
    hw = load_hardware("speq")
    table = energy_table_for(hw)
    static = table.static_mw(hw)
    assert static["pe_array"] == pytest.approx(48.77e-6 * 1968.7 * 4096)  # mW/um^2 x um^2 x PEs
    assert static == table.static_mw(replace(hw, clock_ghz=0.5))  # power, not energy per cycle
    assert static["dram"] == pytest.approx(4 * 653)  # 4 HBM2 stacks


def test_sram_priced_by_size():
    table = load_energy_table("default-28nm")
    a, b = table.sram_fit
    assert 0.4 < b < 0.5  # ~ square root of size
    for p in table.sram_points:  # the fit passes near each point
        assert a * p.size_kib**b == pytest.approx(p.pj_per_64bit, rel=0.35)
    hw = load_hardware("speq")
    prices = {buf: table.sram_pj_per_byte(hw.buffers.get(buf).size_kib) for buf in ("outputs", "activations")}
    assert prices["outputs"] == pytest.approx(a * 128**b / 8) and prices["activations"] == pytest.approx(
        a * 2048**b / 8
    )
    assert prices["activations"] > 3 * prices["outputs"]


def test_dram_energy_comes_from_the_preset():
    hw = load_hardware("speq")
    from specsim.hardware.energy import Actions, energy_breakdown

    e = energy_breakdown(Actions(cycles=0, dram_read_bytes=1000), energy_table_for(hw), hw)
    assert e["dram"] == pytest.approx(1000 * 8 * 3.97)


# ---- 4. Roofline efficiency in (0, 1] on whole runs ------------------------------------------------------


@settings(max_examples=12)
@given(
    rows=st.sampled_from([8, 16, 64]),
    gbps=st.sampled_from([16.0, 128.0, 1024.0, 4096.0]),
    gamma=st.integers(1, 6),
    alpha=st.floats(0, 1),
    arch=st.sampled_from(["smollm2-135m", "opt-6.7b"]),
)
def test_roofline_efficiency_is_in_0_1_for_random_runs(tmp_path_factory, rows, gbps, gamma, alpha, arch):
    cfg = load_run_config(
        ROOT / "hwconfigs/sweep_llama2_7b.yaml",
        [
            f"hardware.array.rows={rows}",
            f"hardware.dram.bandwidth_gbps={gbps}",
            f"decoding.gamma={gamma}",
            f"workloads.0.shape.acceptance.speq={alpha}",
            f"workloads.0.shape.architecture={arch}",
            "workloads.0.shape.max_new_tokens=6",
            "workloads.0.shape.prompt_len=8",
        ],
    )
    for m in run(cfg, progress=False)["workloads"][0]["accelerators"].values():
        assert 0 < m["roofline_efficiency"] <= 1


# ---- 5. Like for like by default --------------------------------------------------------------------------


def test_a_bandwidth_override_moves_every_accelerator(tmp_path):
    proc = _cli(
        "run",
        str(ROOT / "hwconfigs/speq.yaml"),
        "--set",
        "hardware.dram.bandwidth_gbps=128",
        "--json",
        "--out",
        str(tmp_path / "r"),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {hw["dram_gbps"] for hw in report["hardware"].values()} == {128}
    assert (
        len({(hw["rows"], hw["cols"], hw["clock_ghz"], hw["capacity_gib"]) for hw in report["hardware"].values()}) == 1
    )
    assert report["differences"] == {}
    for w in report["workloads"]:  # every speedup carries its interval
        for b, v in w["speedup"].items():
            low, high = w["speedup_ci"][b]
            assert low <= v <= high


def test_a_deliberate_difference_is_named_under_the_table(tmp_path):
    from io import StringIO

    from rich.console import Console

    from specsim.results.report import print_report

    data = yaml.safe_load((ROOT / "hwconfigs/paper/speq.yaml").read_text())
    data["baselines"] = {
        "fp16": str(ROOT / "hwconfigs/fp16.yaml"),
        "olive": {
            "config": str(ROOT / "hwconfigs/paper/olive8.yaml"),
            "overrides": {"hardware": {"array": {"dataflow": "os"}}},
        },
    }
    data["workloads"] = data["workloads"][:1]
    data["workloads"][0]["shape"].update(prompts=2, max_new_tokens=4)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    report = run(load_run_config(path), progress=False)
    assert report["differences"] == {"olive": ["array.dataflow os (speq-paper: ws)"]}
    out = StringIO()
    print_report(report, Console(file=out, width=400))
    assert "not like for like: olive differs from speq-paper in array.dataflow os (speq-paper: ws)" in out.getvalue()
    assert "64x64 os, 1 GHz, 1024 GB/s" in out.getvalue()


# ---- 6. Acceptance: own seed streams, expected mode, confidence intervals ------------------------------


def _two_workloads(tmp_path, mode="sampled", prompts=4):
    data = yaml.safe_load((ROOT / "hwconfigs/paper/speq.yaml").read_text())
    shape = {
        "architecture": "llama-2-7b",
        "prompts": prompts,
        "prompt_len": 32,
        "max_new_tokens": 48,
        "acceptance_mode": mode,
        "acceptance": {"speq": 0.8},
    }
    data["workloads"] = [{"name": "first", "shape": shape}, {"name": "second", "shape": shape}]
    data["baselines"] = {"fp16": str(ROOT / "hwconfigs/fp16.yaml")}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data))
    return run(load_run_config(path), progress=False)


def test_each_workload_draws_its_own_acceptance_sample(tmp_path):
    report = _two_workloads(tmp_path)
    first, second = (w["acceptance"]["speq-paper"]["tokens_per_round"] for w in report["workloads"])
    assert first != second  # same settings, different streams
    assert report["workloads"][0]["speedup_ci"]["fp16"] is not None


def test_expected_acceptance_yields_the_expected_tokens_per_round(tmp_path):
    report = _two_workloads(tmp_path, "expected", prompts=1)
    tau = (1 - 0.8**5) / (1 - 0.8)
    for w in report["workloads"]:
        th = w["theory"]
        assert th["tokens_per_round"] == pytest.approx(tau) and th["configured_alpha"] == pytest.approx(0.8)
        assert th["alpha"] == pytest.approx(0.8, abs=0.1)  # realised by the low-discrepancy rounds
        assert th["configured_speedup"] == pytest.approx(tau / (4 * th["cost_ratio_c"] + 1))
        # decode time per token = simulated round cost / E[tau]: the step costs predict it closely
        assert th["simulated_decode_speedup"] == pytest.approx(th["step_cost_speedup"], rel=0.01)
    a, b = (w["speedup"]["fp16"] for w in report["workloads"])
    assert a == pytest.approx(b, rel=0.01)  # no sampling noise left between workloads


def test_t_quantiles_match_the_table_and_closed_forms():
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 7: 2.365, 10: 2.228, 20: 2.086, 60: 2.000}
    for df, t in table.items():
        assert t_quantile(0.975, df) == pytest.approx(t, abs=5e-4)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.960, rel=1e-3)
    for p in (0.9, 0.975, 0.995):  # exact closed forms at 1 and 2 degrees of freedom
        assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
        assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)
    from specsim.results.stats import t_cdf

    for df in (1.2, 1.5, 2.7, 13.3):  # Welch-Satterthwaite's fractional degrees of freedom
        q = t_quantile(0.975, df)
        assert t_cdf(q, df) == pytest.approx(0.975, abs=1e-10)
        assert t_quantile(0.975, 1) > q > t_quantile(0.975, 30)


def test_ratio_interval_covers_the_truth_at_its_level():
    """Monte Carlo: the 95 % interval of a ratio of per-token costs covers the true ratio about 95 % of
    the time (sequences with random token counts and per-token costs)."""
    rng = np.random.default_rng(7)
    covered, trials = 0, 2000
    for _ in range(trials):
        n = 8
        mt = rng.integers(20, 40, n).astype(float)
        m = mt * rng.normal(1.0, 0.1, n)  # main: 1.0 per token, noisy
        bt = np.full(n, 30.0)
        b = bt * 2.0  # baseline: exactly 2.0 per token
        e = ratio_of_ratios(b, bt, m, mt, 0.95)
        covered += e.low <= 2.0 <= e.high
    assert 0.92 <= covered / trials <= 0.975


def test_geomean_interval_and_missing_intervals():
    rng = np.random.default_rng(3)
    ests = [ratio_of_ratios(np.full(6, 2.0), np.ones(6), rng.normal(1, 0.05, 6), np.ones(6), 0.95) for _ in range(3)]
    g = geomean(ests, 0.95)
    assert g.low < g.value < g.high
    assert g.value == pytest.approx(math.exp(np.mean([math.log(e.value) for e in ests])))
    one = ratio_of_ratios(np.array([2.0]), np.ones(1), np.ones(1), np.ones(1), 0.95)
    assert one.low is None and geomean([one, *ests], 0.95).low is None


# ---- 7. Memory capacity ------------------------------------------------------------------------------------


def _seventy_b(tmp_path):
    path = tmp_path / "l70.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "fp16-70b",
                "hardware": {"include": "speq"},
                "decoding": {"kind": "autoregressive", "level_modes": ["fp16"], "formats": ["fp16"]},
                "workloads": [
                    {
                        "name": "llama-2-70b",
                        "shape": {"architecture": "llama-2-70b", "prompts": 1, "prompt_len": 16, "max_new_tokens": 2},
                    }
                ],
            }
        )
    )
    return path


def test_a_model_that_does_not_fit_is_refused_before_anything_runs(tmp_path):
    path, out = _seventy_b(tmp_path), tmp_path / "out"
    proc = _cli("run", str(path), "--set", "hardware.dram.capacity_gib=8", "--out", str(out))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert "capacity_gib is 8 GiB" in lines[0] and "needs 128." in lines[0] and "capacity_gib >= 128.5" in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    proc = _cli("run", str(path), "--out", str(out))  # the derived capacity: more stacks help
    assert proc.returncode == 2 and "stacks >= 17" in proc.stderr and not out.exists()
    proc = _cli("run", str(path), "--set", "hardware.dram.stacks=17", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["hardware"]["fp16-70b"]["capacity_gib"] == 17 * 8


def test_resident_bytes_count_every_weight_copy():
    from specsim.trace.architectures import load_architecture

    arch = load_architecture("llama-2-7b")
    report = run(load_run_config(ROOT / "hwconfigs/speq.yaml", ["workloads.1.shape.prompts=1"]), progress=False)
    acc = report["workloads"][1]["accelerators"]
    fp16_weights = arch.decoder_weights * 2 + arch.vocab * arch.hidden * 2
    assert acc["fp16"]["resident_bytes"]["weights"] == fp16_weights
    # the draft shares the BSFP words, which carry a 4-bit shift and a 2-bit table selector per 32 weights
    bsfp_words = math.ceil(arch.decoder_weights * (16 + 6 / 32) / 8) + math.ceil(
        arch.vocab * arch.hidden * (16 + 6 / 32) / 8
    )
    assert abs(acc["speq"]["resident_bytes"]["weights"] - bsfp_words) <= 1
    assert acc["mlspecqd"]["resident_bytes"]["weights"] == fp16_weights + math.ceil(arch.decoder_weights * 4.25 / 8)
    assert acc["fp16"]["resident_bytes"]["embeddings"] == arch.vocab * arch.hidden * 2  # Llama-2 is untied
    kv_per_token = 2 * arch.layers * arch.kv_heads * arch.head_dim * 2
    assert acc["fp16"]["resident_bytes"]["kv_cache"] == kv_per_token * (128 + 64 - 1)
    assert acc["speq"]["resident_bytes"]["kv_cache"] > 2 * kv_per_token * (128 + 64 - 1)  # two levels, + gamma


# ---- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("confidence=1.5", "confidence: expected a value <= 0.9999"),
        ("confidence=0", "confidence: expected a value >= 0.5"),
        ("hardware.dram.preset=hbm9", "hardware.dram.preset: unknown DRAM preset 'hbm9'"),
        ("hardware.dram.capacity_gib=0.01", "needs"),
        ("comparison=[same_memory, same_bandwidth]", "both set the same resource"),
        ("workloads.1.shape.acceptance_mode=average", "acceptance_mode: expected one of sampled, expected"),
    ],
)
def test_bad_comparison_input_one_line_exit_2(tmp_path, setting, expected):
    out = tmp_path / "out"
    proc = _cli("run", str(ROOT / "hwconfigs/speq.yaml"), "--set", setting, "--out", str(out))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()


def test_configured_alpha_is_what_a_trace_of_the_profile_estimates():
    """A per-position profile's configured alpha pools accepted over examined positions, as the trace
    summary does: for SmolLM2's BSFP profile it equals that trace's own alpha."""
    from specsim.trace.schedule import AcceptanceProfile
    from specsim.trace.tracefile import read_trace, summarize

    trace = read_trace(ROOT / "traces/smollm2-135m_speq_g4.npz")
    assert AcceptanceProfile.from_trace(trace, 4).pooled_alpha == pytest.approx(summarize(trace).alpha, rel=1e-9)
    assert AcceptanceProfile.parametric(0.7, 5).pooled_alpha == pytest.approx(0.7)


def test_every_hardware_difference_is_named():
    from specsim.results.config import accelerators, differences

    cfg = load_run_config(
        ROOT / "hwconfigs/paper/speq.yaml",
        [
            "baselines.tender.overrides.hardware.dram.latency_ns=2000",
            "baselines.olive.overrides.hardware.buffers.weights.width_bits=32",
            "hardware.array.mode_switch_cycles=4",
        ],
    )
    accs = {a.name: a for a in accelerators(cfg)}
    main = accs["speq-paper"]
    assert differences(main, accs["tender"]) == [
        "array.mode_switch_cycles 16 (speq-paper: 4)",
        "dram.latency_ns 2000 (speq-paper: 28)",
    ]
    assert "buffers.weights.width_bits 32 (speq-paper: 256)" in differences(main, accs["olive"])
    # the preload path is part of the array the baselines share
    cfg = load_run_config(ROOT / "hwconfigs/paper/speq.yaml", ["hardware.array.preload_bits_per_column=64"])
    assert {a.hardware.array.preload_bits_per_column for a in accelerators(cfg)} == {64}
