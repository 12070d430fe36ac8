"""The typed report: pass records, the reference accelerator, one geomean, one atomic file, one file memo."""

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from specsim.atomicdir import atomic_file
from specsim.cli.main import main
from specsim.errors import SpecsimError
from specsim.results.config import load_run_config
from specsim.results.decoding import PassStats, Replay, pass_stats
from specsim.results.plots import _geomean
from specsim.results.report import ROW_COLUMNS, HardwareSummary, report_rows
from specsim.results.run import _reader, run
from specsim.results.stats import Estimate, geomean, geometric_mean
from specsim.trace.tracefile import PHASES
from specsim.typedconfig import file_key

GAMMA = 4


def _write(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _config(folder: Path, reference: str | None = None, baselines=("fp16",)) -> Path:
    """SPEQ against autoregressive FP16 baselines (each a copy of fp16.yaml) on a small shape workload."""
    _write(
        folder,
        "fp16",
        {"name": "fp16", "hardware": "speq", "decoding": {"kind": "autoregressive", "level_modes": ["fp16"]}},
    )
    data = {
        "name": "speq",
        "hardware": {"include": "speq"},
        "decoding": {
            "kind": "speculative",
            "draft": "speq",
            "gamma": GAMMA,
            "level_modes": ["fp16", "quarter"],
            "formats": ["fp16", "bsfp_draft"],
        },
        "baselines": {b: "fp16.yaml" for b in baselines},
        "workloads": [
            {
                "name": "smollm2-135m",
                "shape": {
                    "architecture": "smollm2-135m",
                    "prompts": 2,
                    "prompt_len": 16,
                    "max_new_tokens": 24,
                    "acceptance": {"speq": 0.7},
                },
            }
        ],
    }
    if reference is not None:
        data["reference"] = reference
    return _write(folder, "speq", data)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """The default report of :func:`_config` and its replays (main first)."""
    folder = tmp_path_factory.mktemp("report")
    cache: dict = {}
    report = run(load_run_config(_config(folder)), progress=False, cache=cache)
    replays = {r.accelerator: r for r in cache.values() if isinstance(r, Replay)}
    return report, replays


# ---- pass records ---------------------------------------------------------------------------------


def test_pass_stats_by_hand():
    prefill, draft, verify = (PHASES.index(p) for p in ("prefill", "draft", "verify"))
    levels = np.array([0, 1, 1, 1, 0, 1, 0], dtype=np.int8)
    phases = np.array([prefill, prefill, draft, draft, verify, draft, verify], dtype=np.int8)
    cycles = np.array([100, 40, 10, 20, 50, 30, 70])
    per_pass = {"cycles": cycles, "macs": cycles * 2.0, "dram_bytes": cycles * 3.0, "peak_cycles": cycles / 2}
    got = pass_stats(levels, phases, per_pass)
    assert [(p.level, p.phase, p.count) for p in got] == [
        (0, "prefill", 1),
        (0, "verify", 2),
        (1, "prefill", 1),
        (1, "draft", 3),
    ]
    draft_pass = got[-1]
    assert (draft_pass.mean_cycles, draft_pass.mean_macs, draft_pass.mean_dram_bytes, draft_pass.mean_peak_cycles) == (
        20.0,
        40.0,
        60.0,
        10.0,
    )
    assert got[1].mean_cycles == 60.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        draft_pass.count = 4


def test_replay_passes_feed_phase_steps_and_theory(replayed):
    report, replays = replayed
    main, fp16 = replays["speq"], replays["fp16"]
    assert all(isinstance(p, PassStats) for p in main.passes)
    kinds = [(p.level, p.phase) for p in main.passes]
    assert kinds == sorted(set(kinds), key=lambda k: (k[0], PHASES.index(k[1])))
    draft, verify, decode = main.pass_stats(1, "draft"), main.pass_stats(0, "verify"), fp16.pass_stats(0, "decode")
    assert main.pass_stats(0, "draft") is None and fp16.pass_stats(1, "draft") is None
    assert 1 <= draft.count / verify.count <= GAMMA
    steps = main.phase_steps()
    assert steps["draft"]["passes"] == draft.count
    assert steps["draft"]["seconds"] == pytest.approx(draft.mean_cycles / (main.clock_ghz * 1e9))
    assert steps["verify"]["macs"] == pytest.approx(verify.mean_macs)
    th = report["workloads"][0]["theory"]
    t_ref = decode.mean_cycles / fp16.clock_ghz
    assert th["cost_ratio_c"] == pytest.approx(draft.mean_cycles / main.clock_ghz / t_ref)
    assert th["verify_cost_ratio"] == pytest.approx(verify.mean_cycles / main.clock_ghz / t_ref)
    assert th["draft_passes_per_round"] == pytest.approx(draft.count / verify.count)


# ---- hardware records -----------------------------------------------------------------------------


def test_hardware_record_keeps_the_json_keys(replayed):
    report, _ = replayed
    hw = report["hardware"]["speq"]
    assert list(hw) == [
        "hardware",
        "rows",
        "cols",
        "dataflow",
        "clock_ghz",
        "dram_gbps",
        "dram",
        "capacity_gib",
        "energy_table",
        "decoding",
        "draft",
        "method",
        "lossless",
        "precision",
    ]
    record = HardwareSummary(**hw)
    assert dataclasses.asdict(record) == hw and record.pes == hw["rows"] * hw["cols"]
    row = next(r for r in report_rows(report) if r["accelerator"] == "speq")
    assert row["pes"] == record.pes and row["dram_gbps"] == record.dram_gbps


# ---- the reference accelerator --------------------------------------------------------------------


def test_default_reference_is_recorded(replayed):
    report, _ = replayed
    assert report["reference"] == "fp16"
    assert report["workloads"][0]["vs_reference"]["fp16"]["speedup"] == 1.0


def test_reference_names_a_baseline(tmp_path, replayed):
    default, _ = replayed
    report = run(load_run_config(_config(tmp_path, reference="twin", baselines=("fp16", "twin"))), progress=False)
    assert report["reference"] == "twin"
    w, w0 = report["workloads"][0], default["workloads"][0]
    # twin is fp16 under another name: every ratio to it is the ratio to fp16
    assert w["vs_reference"]["speq"]["speedup"] == pytest.approx(w0["vs_reference"]["speq"]["speedup"])
    assert w["theory"]["cost_ratio_c"] == pytest.approx(w0["theory"]["cost_ratio_c"])
    rows = {r["accelerator"]: r for r in report_rows(report)}
    assert list(rows["speq"]) == list(ROW_COLUMNS)
    assert rows["twin"]["speedup_vs_reference"] == 1.0 and rows["twin"]["energy_vs_reference"] == 1.0


def test_reference_may_be_the_main_accelerator(tmp_path, replayed):
    default, _ = replayed
    report = run(load_run_config(_config(tmp_path, reference="speq")), progress=False)
    w = report["workloads"][0]
    assert report["reference"] == "speq" and w["vs_reference"]["speq"]["speedup"] == 1.0
    assert w["vs_reference"]["fp16"]["speedup"] == pytest.approx(
        1 / default["workloads"][0]["vs_reference"]["speq"]["speedup"]
    )
    assert w["theory"] is None  # the reference has no autoregressive decode pass


def test_default_reference_may_be_absent(tmp_path):
    report = run(load_run_config(_config(tmp_path, baselines=("base",))), progress=False)
    assert report["reference"] is None and report["workloads"][0]["vs_reference"] == {}


def test_unknown_reference_is_one_line_and_exit_code_2(tmp_path, capsys):
    cfg = _config(tmp_path, reference="olive")
    assert main(["run", str(cfg), "--json", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reference: 'olive' is neither this accelerator (speq) nor a baseline (fp16)" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SpecsimError, match="reference"):
        load_run_config(_config(tmp_path), overrides=["reference=tender"])


# ---- one geomean ----------------------------------------------------------------------------------


def test_geometric_mean_by_hand():
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert geometric_mean([1.0, 10.0, 100.0]) == pytest.approx(10.0)
    assert geometric_mean([3.0]) == pytest.approx(3.0)
    assert math.isnan(geometric_mean([]))
    ests = [Estimate(2.0), Estimate(8.0)]
    assert geomean(ests, 0.95).value == geometric_mean([2.0, 8.0])
    assert _geomean([2.0, float("nan"), None, -1.0, 0.0, 8.0]) == geometric_mean([2.0, 8.0])


def test_sweep_geomean_uses_the_helper():
    import pandas as pd

    from specsim.results.sweep import speedup_geomean

    frame = pd.DataFrame({"accelerator": ["a", "a", "b", "b"], "speedup_vs_reference": [2.0, 8.0, None, 0.0]})
    got = speedup_geomean(frame)
    assert got["a"] == geometric_mean([2.0, 8.0]) and math.isnan(got["b"])


# ---- one atomic file ------------------------------------------------------------------------------


def test_atomic_file_replaces_with_ordinary_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.txt.") and tmp.name.endswith(".tmp")
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing replaced before the block ends
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_file_leaves_nothing_behind_on_an_error(tmp_path):
    target = tmp_path / "figure.png"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target, suffix=".tmp.png") as tmp:
        assert tmp.suffix == ".png"
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "new.csv"):
        raise RuntimeError("before writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]


# ---- one file memo --------------------------------------------------------------------------------


def test_file_key_follows_the_file(tmp_path):
    path = tmp_path / "a.yaml"
    assert file_key(path) == (str(path), None, None)
    path.write_text("x: 1\n")
    key = file_key(path)
    assert key == (str(path.resolve()), path.stat().st_mtime_ns, 5) == file_key(path, os.stat(path))
    path.write_text("x: 10\n")
    assert file_key(path) != key


def test_trace_reader_memoizes_by_file_key(tmp_path, monkeypatch):
    import specsim.results.run as run_module

    calls = []
    monkeypatch.setattr(run_module, "read_trace", lambda p: calls.append(p) or object())
    read = _reader({})
    path = tmp_path / "t.npz"
    path.write_bytes(b"1")
    first = read(path)
    assert read(str(path)) is first and len(calls) == 1
    path.write_bytes(b"22")
    assert read(path) is not first and len(calls) == 2
    read(tmp_path / "missing.npz")  # not memoized: read_trace gives its own error
    read(tmp_path / "missing.npz")
    assert len(calls) == 4
    assert json.dumps(file_key(path))  # plain values: usable in any cache key


# ---- the terminal report: fits 100 columns, says what the numbers mean ------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_precision_is_derived_from_decoding_and_pe_modes():
    from types import SimpleNamespace

    from specsim.results.config import accelerators
    from specsim.results.report import precision

    accs = accelerators(load_run_config(ROOT / "hwconfigs" / "speq.yaml"))
    got = {a.name: HardwareSummary.of(a).precision for a in accs}
    assert got == {
        "speq": "W16A16 + BSFP4 draft",
        "fp16": "W16A16",
        "olive": "W4A4",
        "tender": "W4A4",
        "mlspecqd": "W16A16 + MXFP4 draft",
        "hierarchical": "W4A16 + INT3 draft",
        "w4a16": "W4A16",
    }
    modes = accs[0].hardware.modes  # no name is special: another mode, other bits
    assert precision(SimpleNamespace(kind="autoregressive", level_modes=["int8"], formats=["int8"]), modes) == "W8A8"
    assert (
        precision(
            SimpleNamespace(kind="speculative", level_modes=["fp16", "int4", "w3a16"], formats=["fp16", "foo4"]), modes
        )
        == "W16A16 + FOO4/W3A16 draft"
    )


def test_break_even_alpha_inverts_the_tokens_per_round():
    from specsim.results.report import break_even_alpha, iid_tokens_per_round

    for alpha in (0.1, 0.5, 0.73, 0.95):
        assert break_even_alpha(iid_tokens_per_round(alpha, 4), 4) == pytest.approx(alpha, abs=1e-9)
    assert break_even_alpha(0.9, 4) == 0.0 and break_even_alpha(5.01, 4) is None


def test_reading_follows_the_reports_numbers(replayed):
    import copy

    from specsim.results.report import break_even_alpha, reading

    report, _ = replayed
    w = report["workloads"][0]
    th = w["theory"]
    lines = reading(report, w)
    cost = th["draft_passes_per_round"] * th["cost_ratio_c"] + th["verify_cost_ratio"]
    assert f"= {cost:.2f} fp16 decode passes and yields {th['tokens_per_round']:.2f} tokens" in lines[0]
    assert f"alpha {break_even_alpha(cost, th['gamma']):.2f} at gamma {th['gamma']}" in lines[1]
    assert f"{w['speedup']['fp16']:.3f}x" in lines[0]
    quiet = copy.deepcopy(report)  # no theory, no faster baseline: nothing to say
    quiet["workloads"][0]["theory"] = None
    quiet["workloads"][0]["speedup"] = {"fp16": 2.0}
    quiet["workloads"][0]["speedup_ci"] = {"fp16": [1.5, 2.5]}
    assert reading(quiet, quiet["workloads"][0]) == []


def test_console_width_follows_columns(monkeypatch):
    from specsim.results.report import WIDE_COLUMNS, report_console

    monkeypatch.setenv("COLUMNS", "100")
    assert report_console().width == 100 and report_console(wide=True).width == WIDE_COLUMNS
    monkeypatch.delenv("COLUMNS")
    assert report_console().width == 100  # a file or pipe: 100 columns


def _printed(report: dict, width: int, wide: bool = False) -> str:
    from io import StringIO

    from rich.console import Console

    from specsim.results.report import print_report

    out = StringIO()
    print_report(report, Console(file=out, width=width, markup=False, highlight=False), wide=wide)
    return out.getvalue()


def test_shipped_main_job_prints_within_100_and_80_columns(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "specsim.cli.main",
            "run",
            str(ROOT / "hwconfigs" / "speq.yaml"),
            "--out",
            str(tmp_path / "r"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for width in (100, 80):
        text = _printed(report, width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert "..." not in text and "\u2026" not in text and text.isascii()
        words = " ".join(text.split())  # wrapped lines joined
        assert "speedup = baseline time / speq time per decoded token" in words and "> 1 means speq is faster" in words
        assert "SHAPE-DERIVED" in words and "/../" not in words
        for label in ("olive (W4A4)", "tender (W4A4)", "w4a16 (W4A16)", "mlspecqd (W16A16 + MXFP4 draft)"):
            assert label in words
        ci = report["workloads"][0]["speedup_ci"]["fp16"]  # the reading follows the report's own interval
        assert "Breaking even needs" in words and ("too low to beat fp16" in words) == (ci[1] < 1)
    wide = _printed(report, 190, wide=True)
    assert "speq speedup" in wide and "array, clock," in wide  # the single table with every column
    assert "..." not in wide and "\u2026" not in wide
