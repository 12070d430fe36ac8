"""`specsim run`: decoding replay against theory and physics, the report, and bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from specsim.cli.main import main
from specsim.errors import SpecsimError
from specsim.hardware.config import load_hardware
from specsim.results.config import load_run_config
from specsim.results.report import leviathan_speedup
from specsim.results.run import run

ROOT = Path(__file__).resolve().parents[1]
GAMMA = 4


def _write(tmp_path, name, data):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _shape_config(tmp_path, alpha, arch="smollm2-135m", tokens=96, prompts=2, extra_baselines=()):
    """SPEQ vs FP16 on a shape-only workload with i.i.d. acceptance ``alpha``."""
    _write(
        tmp_path,
        "fp16",
        {"name": "fp16", "hardware": "speq", "decoding": {"kind": "autoregressive", "level_modes": ["fp16"]}},
    )
    baselines = {"fp16": "fp16.yaml", **{b: f"{b}.yaml" for b in extra_baselines}}
    return _write(
        tmp_path,
        "speq",
        {
            "name": "speq",
            "hardware": {"include": "speq"},
            "decoding": {
                "kind": "speculative",
                "draft": "speq",
                "gamma": GAMMA,
                "level_modes": ["fp16", "quarter"],
                "formats": ["fp16", "bsfp_draft"],
            },
            "baselines": baselines,
            "workloads": [
                {
                    "name": arch,
                    "shape": {
                        "architecture": arch,
                        "prompts": prompts,
                        "prompt_len": 32,
                        "max_new_tokens": tokens,
                        "acceptance": {"speq": alpha},
                    },
                }
            ],
        },
    )


def _theory(tmp_path, alpha, **kw):
    report = run(load_run_config(_shape_config(tmp_path, alpha, **kw)), progress=False)
    return report, report["workloads"][0]


def test_alpha_one_approaches_the_ideal_bound(tmp_path):
    report, w = _theory(tmp_path, 1.0)
    th = w["theory"]
    assert th["tokens_per_round"] == pytest.approx(GAMMA + 1, rel=0.05)
    ideal = (GAMMA + 1) / (GAMMA * th["cost_ratio_c"] + th["verify_cost_ratio"])
    assert th["simulated_decode_speedup"] == pytest.approx(ideal, rel=0.04)
    assert th["simulated_decode_speedup"] == pytest.approx(leviathan_speedup(1.0, GAMMA, th["cost_ratio_c"]), rel=0.06)
    assert th["simulated_decode_speedup"] > 1.5


def test_alpha_zero_is_slower_than_fp16_by_the_draft_cost(tmp_path):
    report, w = _theory(tmp_path, 0.0)
    th = w["theory"]
    m = w["accelerators"]
    ratio = m["speq"]["decode_latency_per_token_s"] / m["fp16"]["decode_latency_per_token_s"]
    assert ratio > 1 + 0.9 * GAMMA * th["cost_ratio_c"]
    assert ratio == pytest.approx(GAMMA * th["cost_ratio_c"] + th["verify_cost_ratio"], rel=0.04)


@pytest.mark.parametrize("alpha", [0.3, 0.6, 0.9])
def test_speedup_consistent_with_leviathan_on_iid_acceptance(tmp_path, alpha):
    report, w = _theory(tmp_path, alpha, tokens=256)
    th = w["theory"]
    # with the measured tokens per round, draft passes per round and verify cost: within the overheads
    assert th["simulated_decode_speedup"] == pytest.approx(th["step_cost_speedup"], rel=0.03)
    # Leviathan's closed form with the measured c: within sampling noise and the verify overhead
    assert th["simulated_decode_speedup"] == pytest.approx(th["leviathan_speedup"], rel=0.12)


def test_fp16_decode_is_not_faster_than_weight_bytes_over_bandwidth(tmp_path):
    report, w = _theory(tmp_path, 0.5, arch="llama-2-7b", tokens=4, prompts=1)
    from specsim.trace.architectures import load_architecture

    arch = load_architecture("llama-2-7b")
    hw = load_hardware("speq")
    weight_bytes = 2 * (arch.decoder_weights + arch.vocab * arch.hidden)
    floor_s = weight_bytes / (hw.dram.bandwidth_gbps * 1e9)
    per_token = w["accelerators"]["fp16"]["decode_latency_per_token_s"]
    assert floor_s <= per_token <= 1.05 * floor_s
    assert w["source"] == "shape" and "SHAPE-DERIVED" in w["note"]


def test_energy_breakdown_sums_to_total_and_json_shape(tmp_path, capsys):
    cfg = _shape_config(tmp_path, 0.7, tokens=16)
    assert main(["run", str(cfg), "--json", "--out", str(tmp_path / "out")]) == 0
    report = json.loads(capsys.readouterr().out)
    w = report["workloads"][0]
    assert set(w) >= {"name", "source", "accelerators", "speedup", "energy_efficiency"}
    for m in w["accelerators"].values():
        assert sum(m["energy_breakdown_j"].values()) == pytest.approx(m["energy_j_per_token"], rel=1e-9)
        assert set(m) >= {
            "latency_s",
            "tokens_per_s",
            "energy_j_per_token",
            "energy_breakdown_j",
            "roofline_efficiency",
        }
        assert 0 < m["roofline_efficiency"] <= 1
    assert set(report["geomean_speedup"]) == {"fp16"}
    assert (tmp_path / "out" / "report.json").exists() and (tmp_path / "out" / "report.csv").exists()
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report


def test_set_overrides_hardware_and_decoding(tmp_path):
    cfg = _shape_config(tmp_path, 0.7, tokens=16)
    loaded = load_run_config(cfg, ["hardware.array.rows=128", "decoding.gamma=8", "workloads.0.shape.prompts=1"])
    assert loaded.hardware.array.rows == 128 and loaded.decoding.gamma == 8
    assert loaded.workloads[0].shape.prompts == 1
    report = run(loaded, progress=False)
    assert report["hardware"]["fp16"]["rows"] == 128  # same_pe_count follows the main array


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "specsim.cli.main", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


@pytest.mark.parametrize(
    "case",
    [
        "unknown_key",
        "unknown_accelerator",
        "missing_trace",
        "model_mismatch",
        "format_mismatch",
        "bad_value",
        "wrong_kind",
        "missing_baseline",
    ],
)
def test_bad_input_one_line_exit_2_no_results(tmp_path, case):
    cfg = _shape_config(tmp_path, 0.7, tokens=8)
    args = []
    data = yaml.safe_load(cfg.read_text())
    traces = ROOT / "traces"
    if case == "unknown_key":
        args = ["--set", "hardware.array.speed=3"]
        expect = "unknown key 'hardware.array.speed'"
    elif case == "unknown_accelerator":
        data["workloads"] = [
            {
                "name": "smol",
                "traces": {
                    "speq": str(traces / "smollm2-135m_speq_g4.npz"),
                    "fp16": str(traces / "smollm2-135m_fp16.npz"),
                    "olive": str(traces / "smollm2-135m_olive4.npz"),
                },
            }
        ]
        expect = "traces.olive: unknown accelerator"
    elif case == "missing_baseline":
        data["baselines"]["olive"] = "olive.yaml"
        expect = "baselines.olive"
    elif case == "missing_trace":
        data["workloads"] = [
            {
                "name": "smol",
                "traces": {"speq": str(tmp_path / "nope.npz"), "fp16": str(traces / "smollm2-135m_fp16.npz")},
            }
        ]
        expect = "nope.npz"
    elif case == "model_mismatch":
        from specsim.trace.tracefile import read_trace, write_trace

        other = read_trace(traces / "smollm2-135m_fp16.npz")
        write_trace(tmp_path / "other.npz", {**other.header, "model": "other-model"}, other.arrays)
        data["workloads"] = [
            {
                "name": "smol",
                "traces": {"speq": str(traces / "smollm2-135m_speq_g4.npz"), "fp16": str(tmp_path / "other.npz")},
            }
        ]
        expect = "has model 'other-model'"
    elif case == "format_mismatch":
        data["workloads"] = [
            {
                "name": "smol",
                "traces": {
                    "speq": str(traces / "smollm2-135m_speq_g4.npz"),
                    "fp16": str(traces / "smollm2-135m_olive4.npz"),
                },
            }
        ]
        expect = "runs 'olive4' weights at level 0, the accelerator expects 'fp16'"
    elif case == "bad_value":
        args = ["--set", "decoding.gamma=0"]
        expect = "decoding.gamma"
    else:
        data["workloads"] = [
            {
                "name": "smol",
                "traces": {
                    "speq": str(traces / "smollm2-135m_fp16.npz"),
                    "fp16": str(traces / "smollm2-135m_fp16.npz"),
                },
            }
        ]
        expect = "autoregressive decoding, expected speculative"
    cfg.write_text(yaml.safe_dump(data))
    out = tmp_path / "results"
    proc = _cli("run", str(cfg), "--out", str(out), *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and expect in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".results.*"))


def test_shipped_main_job_runs_on_shipped_traces(tmp_path):
    proc = _cli("run", str(ROOT / "hwconfigs" / "speq.yaml"), "--out", str(tmp_path / "r"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    names = [w["name"] for w in report["workloads"]]
    assert names == ["smollm2-135m", "llama-2-7b", "gemma3-270m"]
    assert [w["source"] for w in report["workloads"]] == ["trace", "shape", "trace"]
    assert set(report["geomean_speedup"]) == {"fp16", "olive", "tender", "mlspecqd", "hierarchical", "w4a16"}
    smol = report["workloads"][0]
    assert smol["drift"]["olive"]["token_agreement"] < 1 and "speq" not in smol["drift"]
    assert all(math.isfinite(v) and v > 0 for v in report["geomean_speedup"].values())
    gemma = report["workloads"][2]  # a second real model, with sliding-window layers
    assert gemma["drift"]["tender"]["token_agreement"] < 1 and gemma["theory"]["alpha"] > 0


@pytest.mark.parametrize("path", sorted((ROOT / "hwconfigs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_run_configs_load(path):
    from specsim.results.config import accelerators

    cfg = load_run_config(path)
    accs = accelerators(cfg)
    assert accs[0].name == cfg.name and all(a.hardware.array.rows == cfg.hardware.array.rows for a in accs)


def test_comparison_bases(tmp_path):
    from specsim.results.config import accelerators, differences

    cfg = _shape_config(tmp_path, 0.7, extra_baselines=("olive",))
    _write(
        tmp_path,
        "olive",
        {
            "name": "olive",
            "hardware": {
                "include": "olive",
                "array": {"rows": 32, "cols": 32},
                "clock_ghz": 0.5,
                "dram": {"bandwidth_gbps": 100},
            },
            "decoding": {
                "method": "olive",
                "level_modes": ["int4"],
                "formats": ["olive4"],
                "params": {"decoder_cycles": 2},
            },
        },
    )
    # default like for like: the baseline takes the main array, clock, memory and buffers; nothing differs
    accs = {a.name: a for a in accelerators(load_run_config(cfg, ["hardware.dram.bandwidth_gbps=128"]))}
    olive, speq = accs["olive"].hardware, accs["speq"].hardware
    assert (olive.pes, olive.clock_ghz, olive.dram.bandwidth_gbps) == (speq.pes, speq.clock_ghz, 128)
    assert olive.dram.capacity_gib == speq.dram.capacity_gib and differences(accs["speq"], accs["olive"]) == []
    # only the PE count shared: the rest of the baseline's own file stays, and is named
    accs = {a.name: a for a in accelerators(load_run_config(cfg, ["comparison=same_pe_count"]))}
    assert accs["olive"].hardware.pes == accs["speq"].hardware.pes
    assert accs["olive"].hardware.dram.bandwidth_gbps == 100
    assert differences(accs["speq"], accs["olive"]) == [
        "clock_ghz 0.5 (speq: 1)",
        "dram.bandwidth_gbps 100 (speq: 1024)",
    ]
    area = {a.name: a for a in accelerators(load_run_config(cfg, ["comparison=[same_area, same_memory]"]))}
    main_area = area["speq"].hardware.pes * area["speq"].energy.pe_area.value
    olive_area = area["olive"].hardware.pes * area["olive"].energy.pe_area.value
    assert olive_area == pytest.approx(main_area, rel=0.05) and area["olive"].hardware.pes > area["speq"].hardware.pes
    bw = {a.name: a.hardware for a in accelerators(load_run_config(cfg, ["comparison=same_bandwidth"]))}
    assert bw["olive"].dram.bandwidth_gbps == bw["speq"].dram.bandwidth_gbps and bw["olive"].array.rows == 32
    # a deliberate difference is a baseline-specific override, applied after the basis, and shown
    data = yaml.safe_load(cfg.read_text())
    data["baselines"]["olive"] = {"config": "olive.yaml", "overrides": {"hardware": {"array": {"dataflow": "os"}}}}
    cfg.write_text(yaml.safe_dump(data))
    accs = {a.name: a for a in accelerators(load_run_config(cfg))}
    assert accs["olive"].hardware.array.dataflow == "os" and accs["olive"].hardware.pes == accs["speq"].hardware.pes
    assert differences(accs["speq"], accs["olive"]) == ["array.dataflow os (speq: ws)"]
    swept = {
        a.name: a for a in accelerators(load_run_config(cfg, ["baselines.olive.overrides.hardware.array.dataflow=is"]))
    }
    assert swept["olive"].hardware.array.dataflow == "is"
    with pytest.raises(SpecsimError, match=r"baselines.olive.overrides.*hardware.array.speed"):
        accelerators(load_run_config(cfg, ["baselines.olive.overrides.hardware.array.speed=2"]))
    for bad, message in (
        ("[same_pe_count, same_area]", "both set the same resource"),
        ("[same_memory, same_bandwidth]", "both set the same resource"),
        ("[same_bandwidth, same_bandwidth]", "listed twice"),
        ("[]", "expected like_for_like"),
        ("[same_pe_count, same_silicon]", "expected one of same_pe_count"),
    ):
        with pytest.raises(SpecsimError, match=message):
            load_run_config(cfg, [f"comparison={bad}"])


# ---- provenance: version, --set overrides, SHA-256 of every input ----------------------------------


def _provenance_config(tmp_path):
    """SPEQ on a local hardware file vs FP16, on a shape workload whose acceptance is a copied trace."""
    import shutil

    shutil.copy(ROOT / "specsim/data/hardware/speq.yaml", tmp_path / "myhw.yaml")
    shutil.copy(ROOT / "traces/smollm2-135m_speq_g4.npz", tmp_path / "accept.npz")
    _write(
        tmp_path,
        "fp16",
        {"name": "fp16", "hardware": "speq", "decoding": {"kind": "autoregressive", "level_modes": ["fp16"]}},
    )
    return _write(
        tmp_path,
        "speq",
        {
            "name": "speq",
            "hardware": {"include": "myhw.yaml"},
            "decoding": {
                "kind": "speculative",
                "draft": "speq",
                "gamma": GAMMA,
                "level_modes": ["fp16", "quarter"],
                "formats": ["fp16", "bsfp_draft"],
            },
            "baselines": {"fp16": "fp16.yaml"},
            "workloads": [
                {
                    "name": "s",
                    "shape": {
                        "architecture": "smollm2-135m",
                        "prompts": 2,
                        "prompt_len": 16,
                        "max_new_tokens": 16,
                        "acceptance": {"speq": "accept.npz"},
                    },
                }
            ],
        },
    )


def test_report_records_version_overrides_and_input_hashes(tmp_path, capsys):
    import hashlib

    import pandas as pd

    from specsim._version import __version__
    from specsim.results import plots

    cfg = _provenance_config(tmp_path)
    args = ["run", str(cfg), "--json", "--set", "workloads.0.shape.prompts=3"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    first = json.loads(capsys.readouterr().out)["provenance"]
    assert first["specsim_version"] == __version__ and first["overrides"] == ["workloads.0.shape.prompts=3"]
    by_file = {Path(p).resolve(): sha for p, sha in first["inputs"].items()}
    for f in ("myhw.yaml", "accept.npz", "speq.yaml", "fp16.yaml"):
        assert by_file[(tmp_path / f).resolve()] == hashlib.sha256((tmp_path / f).read_bytes()).hexdigest()
    names = {p.name for p in by_file}
    assert {"smollm2-135m.yaml", "hbm2.yaml", "default-28nm.yaml", "shared-28nm.yaml"} <= names  # arch, DRAM, energy
    # one byte more in the hardware file: its hash and the digest change, nothing else
    with open(tmp_path / "myhw.yaml", "a") as f:
        f.write("#")
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    second = json.loads(capsys.readouterr().out)["provenance"]
    changed = [p for p in first["inputs"] if first["inputs"][p] != second["inputs"][p]]
    assert [Path(p).name for p in changed] == ["myhw.yaml"] and set(first["inputs"]) == set(second["inputs"])
    assert first["inputs_sha256"] != second["inputs_sha256"]
    # report.csv carries the same provenance in columns a CSV reader (and specsim plot) reads as text
    frame = pd.read_csv(tmp_path / "b" / "report.csv")
    assert set(frame["specsim_version"].astype(str)) == {__version__}
    assert set(frame["inputs_sha256"]) == {second["inputs_sha256"]}
    assert json.loads(frame["overrides"][0]) == ["workloads.0.shape.prompts=3"]
    assert set(frame["precision"]) == {"W16A16 + BSFP4 draft", "W16A16"}
    assert plots.param_columns(plots.load_table(tmp_path / "b")) == []


def test_sweep_and_run_record_the_same_input_files(tmp_path):
    from specsim.results.sweep import plan

    cfg = _provenance_config(tmp_path)
    report = run(load_run_config(cfg), progress=False)
    manifest = plan(cfg, {"decoding.gamma": [4]}).manifest()
    assert {str(Path(p).resolve()) for p in report["provenance"]["inputs"]} == set(manifest["inputs"])
    assert sorted(report["provenance"]["inputs"].values()) == sorted(manifest["inputs"].values())


def test_paths_print_relative_to_the_current_folder(tmp_path, monkeypatch):
    from specsim.paths import display_path

    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert display_path(tmp_path / "sub" / ".." / "sub" / "t.npz") == "t.npz"
    assert display_path("../x.npz") == str(tmp_path / "x.npz")  # outside: absolute
    assert display_path("<built-in>") == "<built-in>"
    report = run(load_run_config(_provenance_config(tmp_path / "sub")), progress=False)
    assert "accept.npz" in report["workloads"][0]["note"] and "/../" not in report["workloads"][0]["note"]
    assert "accept.npz" in report["provenance"]["inputs"]
