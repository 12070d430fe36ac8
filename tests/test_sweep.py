"""Design-space sweeps: the tidy table, executors, resume after a kill, failures, bad input, plots."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import specsim
from specsim.cli.main import main
from specsim.errors import SpecsimError
from specsim.results.report import ROW_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
GRID = {"hardware.array.rows": [16, 32, 64], "decoding.gamma": [2, 4]}


def _config(tmp_path: Path, tokens: int = 8) -> Path:
    """SPEQ vs FP16 and OliVe on a small SmolLM2-shaped workload (SHAPE-DERIVED), parametric alpha."""
    path = tmp_path / "sweep.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "speq",
                "hardware": {"include": "speq"},
                "decoding": {
                    "kind": "speculative",
                    "draft": "speq",
                    "gamma": 4,
                    "level_modes": ["fp16", "quarter"],
                    "formats": ["fp16", "bsfp_draft"],
                },
                "baselines": {"fp16": str(ROOT / "hwconfigs/fp16.yaml"), "olive": str(ROOT / "hwconfigs/olive.yaml")},
                "workloads": [
                    {
                        "name": "smollm2-135m",
                        "shape": {
                            "architecture": "smollm2-135m",
                            "prompts": 1,
                            "prompt_len": 16,
                            "max_new_tokens": tokens,
                            "acceptance": {"speq": 0.7},
                        },
                    }
                ],
            }
        )
    )
    return path


def test_grid_table_has_one_row_per_point_workload_accelerator(tmp_path):
    frame = specsim.sweep(_config(tmp_path), GRID, workers=1, progress=False)
    assert len(frame) == 6 * 1 * 3
    assert list(frame.columns) == ["point", *GRID, *ROW_COLUMNS]
    assert not frame.duplicated(["point", "workload", "accelerator"]).any()
    main = frame[frame.is_main]
    assert sorted(main["rows"]) == sorted(main["hardware.array.rows"])  # the swept value reached the hardware
    assert (main["gamma"] == main["decoding.gamma"]).all()  # ... and the decoding
    olive = frame[frame.accelerator == "olive"]
    assert (olive["rows"] == olive["hardware.array.rows"]).all()  # same_pe_count basis applied
    # FP16 decode is bandwidth-bound at every one of these arrays: the array size moves it only by the
    # pipeline fill of each GEMM (rows + cols cycles), a few percent
    fp16 = frame[(frame.accelerator == "fp16") & (frame["decoding.gamma"] == 2)]["decode_latency_per_token_s"]
    assert fp16.max() <= 1.05 * fp16.min()
    assert frame.attrs["summary"].line() == "6 points: 6 run, 0 already done, 0 failed"


def test_explicit_points_and_the_run_report_agree(tmp_path):
    cfg = _config(tmp_path)
    frame = specsim.sweep(cfg, [{"hardware.array.rows": 32, "decoding.gamma": 2}], workers=1, progress=False)
    from specsim.results.config import load_run_config
    from specsim.results.report import report_rows
    from specsim.results.run import run

    rows = report_rows(run(load_run_config(cfg, ["hardware.array.rows=32", "decoding.gamma=2"]), progress=False))
    pd.testing.assert_frame_equal(frame[list(ROW_COLUMNS)], pd.DataFrame(rows, columns=ROW_COLUMNS))


@pytest.mark.cluster
def test_executors_give_identical_tables(tmp_path):
    """In-process, two local processes and a Dask LocalCluster: the same table, value for value."""
    from distributed import Client, LocalCluster

    cfg = _config(tmp_path)
    one = specsim.sweep(cfg, GRID, workers=1, progress=False)
    two = specsim.sweep(cfg, GRID, workers=2, progress=False)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        dask = specsim.sweep(cfg, GRID, scheduler=client, progress=False)
        by_address = specsim.sweep(cfg, GRID, scheduler=cluster.scheduler_address, out=tmp_path / "d", progress=False)
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(one, dask)
    pd.testing.assert_frame_equal(one, by_address)


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_identical_table(tmp_path):
    cfg = _config(tmp_path, tokens=12)
    args = [
        sys.executable,
        "-m",
        "specsim.cli.main",
        "sweep",
        str(cfg),
        "--set",
        "hardware.array.rows=8,16,32,64",
        "--set",
        "decoding.gamma=1,2,3,4,5,6",
        "--set",
        "workloads.0.shape.acceptance.speq=0.5,0.9",
        "--workers",
        "1",
        "--no-progress",
    ]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    points = killed / "points.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if points.exists() and len(points.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(points.read_text().splitlines())
    assert 3 <= done < 48, "the sweep must be killed part-way"
    assert not (killed / "results.csv").exists()
    with points.open("a") as fh:  # a write torn by the kill
        fh.write('{"point": 47, "params": [["hardware.ar')
    resumed = subprocess.run([*args, "--out", str(killed)], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"48 points: {48 - done} run, {done} already done, 0 failed" in resumed.stdout
    fresh = subprocess.run([*args, "--out", str(tmp_path / "fresh")], capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    assert (killed / "results.csv").read_bytes() == (tmp_path / "fresh" / "results.csv").read_bytes()
    table = pd.read_parquet(killed / "results.parquet")
    assert len(table) == 48 * 3 and not table.duplicated(["point", "workload", "accelerator"]).any()
    pd.testing.assert_frame_equal(table, pd.read_parquet(tmp_path / "fresh" / "results.parquet"))
    again = subprocess.run([*args, "--out", str(killed)], capture_output=True, text=True, timeout=600)
    assert "48 points: 0 run, 48 already done, 0 failed" in again.stdout


def test_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    cfg = _config(tmp_path)
    space = {"workloads.0.shape.acceptance.speq": [0.6, "no_such_trace.npz", 0.8]}
    out = tmp_path / "out"
    frame = specsim.sweep(cfg, space, workers=1, out=out, progress=False)
    summary = frame.attrs["summary"]
    assert summary.line() == "3 points: 3 run, 0 already done, 1 failed"
    assert sorted(frame["point"].unique()) == [0, 2]
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures["point"]) == [1] and "no_such_trace.npz" in failures["error"][0]
    assert (out / "results.parquet").exists()
    rerun = specsim.sweep(cfg, space, workers=1, out=out, progress=False)
    assert rerun.attrs["summary"].line() == "3 points: 0 run, 3 already done, 1 failed"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "hardware.array.rowz=16,32"], "unknown key 'hardware.array.rowz' (expected one of: rows, cols,"),
        (["--set", "hardware.array.rows="], "empty value"),
        (["--set", "hardware.array.rows=16,,32"], "empty value"),
        (["--set", "hardware.array.rows"], "expected key=value1,value2"),
        (["--set", "hardware.array.rows=[16,32"], "unbalanced"),
        (["--set", "hardware.array.rows=16,-4"], "hardware.array.rows"),
        (["--set", "decoding.gamma=2,four"], "decoding.gamma"),
        (["--set", "hardware.array.rows=16", "--workers", "0"], "--workers"),
        pytest.param(
            ["--set", "hardware.array.rows=16", "--scheduler", "tcp://127.0.0.1:9"],
            "cannot reach a Dask scheduler",
            marks=pytest.mark.cluster,  # waits for the connection to fail (5 s)
        ),
        ([], "nothing to sweep"),
    ],
)
def test_bad_sweep_input_one_line_exit_2_nothing_written(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["sweep", str(_config(tmp_path)), *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_api_rejects_empty_lists_and_unknown_keys_before_running(tmp_path):
    cfg = _config(tmp_path)
    with pytest.raises(SpecsimError, match="empty value list"):
        specsim.sweep(cfg, {"decoding.gamma": []})
    with pytest.raises(SpecsimError, match="unknown key 'speculation'"):
        specsim.sweep(cfg, {"speculation.gamma": [2, 4]})
    with pytest.raises(SpecsimError, match="repeats point 0"):
        specsim.sweep(cfg, [{"decoding.gamma": 2}, {"decoding.gamma": 2}])


def test_resume_refuses_a_folder_of_another_sweep(tmp_path, capsys):
    cfg = _config(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--set", "decoding.gamma=2,4", "--workers", "1", "--out", str(out)]) == 0
    before = (out / "results.csv").read_bytes()
    assert main(["sweep", str(cfg), "--set", "decoding.gamma=2,8", "--workers", "1", "--out", str(out)]) == 2
    assert "other arguments" in capsys.readouterr().err
    assert (out / "results.csv").read_bytes() == before


def test_every_plot_kind_writes_its_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from specsim.results import plots

    cfg = _config(tmp_path)
    out = tmp_path / "sweep"
    specsim.sweep(
        cfg,
        {"decoding.gamma": [1, 2, 4], "workloads.0.shape.acceptance.speq": [0.5, 0.9]},
        workers=1,
        out=out,
        progress=False,
    )
    assert main(["plot", str(out), "--kind", "heatmap", "-o", str(tmp_path / "heat.png")]) == 0
    pe = tmp_path / "pe"
    specsim.sweep(
        cfg, {"hardware.array.rows": [16, 64], "hardware.array.cols": [16, 64]}, workers=1, out=pe, progress=False
    )
    assert main(["plot", str(pe), "--kind", "pe-sweep", "-o", str(tmp_path / "pe.svg")]) == 0
    for kind in ("speedup", "energy", "roofline"):
        assert (
            main(
                [
                    "plot",
                    str(pe),
                    "--kind",
                    kind,
                    "--where",
                    "hardware.array.rows=64",
                    "--where",
                    "hardware.array.cols=64",
                    "-o",
                    str(tmp_path / f"{kind}.pdf"),
                ]
            )
            == 0
        )
    batch = tmp_path / "batch"
    specsim.sweep(cfg, {"decoding.batch": [1, 2, 4]}, workers=1, out=batch, progress=False)
    assert main(["plot", str(batch), "--kind", "batch", "-o", str(tmp_path / "batch.png")]) == 0
    frame = plots.load_table(batch)
    assert sorted(frame[frame.accelerator == "fp16"]["batch"]) == [1, 2, 4]  # every baseline at the main's batch
    for name in ("heat.png", "pe.svg", "speedup.pdf", "energy.pdf", "roofline.pdf", "batch.png"):
        assert (tmp_path / name).stat().st_size > 1000
    # a run's report.csv plots too, and ambiguous or bad requests are one-line errors
    run_out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(run_out)]) == 0
    assert main(["plot", str(run_out), "--kind", "speedup", "-o", str(tmp_path / "run.png")]) == 0
    assert main(["plot", str(pe), "--kind", "speedup", "-o", str(tmp_path / "x.png")]) == 2
    assert main(["plot", str(pe), "--kind", "speedup", "-o", str(tmp_path / "x.jpg")]) == 2
    assert main(["plot", str(tmp_path / "nowhere"), "--kind", "speedup", "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
    frame = plots.load_table(out)
    assert set(plots.param_columns(frame)) == {"decoding.gamma", "workloads.0.shape.acceptance.speq"}


def test_resume_refuses_changed_inputs_and_keeps_good_records(tmp_path, capsys):
    """A baseline file edited between runs is caught; lines that are not finished points of this sweep
    (edited, foreign, binary) are dropped and never replace a good record."""
    cfg = _config(tmp_path)
    fp16 = tmp_path / "fp16.yaml"
    fp16.write_text(
        (ROOT / "hwconfigs/fp16.yaml")
        .read_text()
        .replace("include: speq", f"include: {ROOT}/specsim/data/hardware/speq.yaml")
    )
    data = yaml.safe_load(cfg.read_text())
    data["baselines"]["fp16"] = str(fp16)
    cfg.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    args = ["sweep", str(cfg), "--set", "decoding.gamma=2,4", "--workers", "1", "--out", str(out)]
    assert main(args) == 0
    before = (out / "results.csv").read_bytes()
    with (out / "points.jsonl").open("ab") as fh:
        fh.write(b'{"point": 0}\n{"point": 7, "params": []}\n\xff\xfe\n')
        fh.write(json.dumps({"point": 1, "params": [["decoding.gamma", 4]], "rows": [{"bogus": 1}]}).encode() + b"\n")
    capsys.readouterr()
    assert main(args) == 0
    assert "2 points: 0 run, 2 already done, 0 failed" in capsys.readouterr().out
    assert (out / "results.csv").read_bytes() == before
    fp16.write_text(fp16.read_text() + "\n# edited\n")
    assert main(args) == 2
    assert f"input file {fp16.resolve()} differs" in capsys.readouterr().err
    (out / "sweep.json").write_bytes(b"\xff[1, 2]")
    assert main(args) == 2
    assert "unreadable sweep manifest" in capsys.readouterr().err


def test_a_folder_is_locked_by_its_sweep(tmp_path):
    import fcntl

    cfg = _config(tmp_path)
    out = tmp_path / "out"
    specsim.sweep(cfg, {"decoding.gamma": [2]}, workers=1, out=out, progress=False)
    with (out / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SpecsimError, match="another sweep is writing to this folder"):
            specsim.sweep(cfg, {"decoding.gamma": [2]}, workers=1, out=out, progress=False)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--set", "workloads.0.shape.prompt_len=8", "--set", "workloads.00.shape.prompt_len=16"],
            "names the same config key",
        ),
        (["--set", "hardware.clock_ghz=.inf"], "expected a finite number"),
        (["--points", "POINTS"], "clashes with the results column 'decoding'"),
    ],
)
def test_more_bad_sweep_input(tmp_path, capsys, argv, message):
    points = tmp_path / "points.yaml"
    points.write_text("- {decoding: {gamma: 2}}\n")
    out = tmp_path / "out"
    assert (
        main(["sweep", str(_config(tmp_path)), *[str(points) if a == "POINTS" else a for a in argv], "--out", str(out)])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize("target", ["file", "file/sub"])
def test_out_that_cannot_be_a_folder(tmp_path, capsys, target):
    (tmp_path / "file").write_text("x")
    assert main(["sweep", str(_config(tmp_path)), "--set", "decoding.gamma=2", "--out", str(tmp_path / target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err, err


def test_failed_points_exit_1_and_empty_tables_do_not_plot(tmp_path, capsys):
    cfg = _config(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--set", "name=a,b", "--workers", "1", "--out", str(out)]) == 1
    assert "2 points: 2 run, 0 already done, 2 failed" in capsys.readouterr().out
    for kind in ("speedup", "energy", "pe-sweep", "heatmap", "roofline"):
        assert main(["plot", str(out), "--kind", kind, "-o", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no rows to plot" in err, err
    assert not (tmp_path / "x.png").exists()


def test_plot_output_and_where_values(tmp_path, capsys):
    cfg = _config(tmp_path)
    out = tmp_path / "out"
    specsim.sweep(
        cfg,
        {"decoding.gamma": [2, 4], "workloads.0.shape.acceptance.speq": [0.6, "trace.npz"]},
        workers=1,
        out=out,
        progress=False,
    )  # the trace points fail: only alpha 0.6 has rows
    pick = ["--where", "decoding.gamma=2", "--where", "is_main=true"]
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "file").write_text("x")
    for target in ("dir.png", "file/x.png"):
        assert main(["plot", str(out), "--kind", "speedup", *pick, "-o", str(tmp_path / target)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"-o {tmp_path / target}" in err, err
    assert main(["plot", str(out), "--kind", "speedup", *pick, "-o", str(tmp_path / "new" / "dir" / "s.png")]) == 0
    assert (tmp_path / "new" / "dir" / "s.png").stat().st_size > 1000
    both = tmp_path / "both"
    specsim.sweep(
        cfg,
        {
            "decoding.gamma": [2, 4],
            "workloads.0.shape.acceptance.speq": [0.6, str(ROOT / "traces/smollm2-135m_speq_g4.npz")],
        },
        workers=1,
        out=both,
        progress=False,
    )
    assert main(["plot", str(both), "--kind", "heatmap", "-o", str(tmp_path / "h.png")]) == 2
    assert "needs numbers" in capsys.readouterr().err
    assert (
        main(
            [
                "plot",
                str(both),
                "--kind",
                "heatmap",
                "--where",
                "workloads.0.shape.acceptance.speq=0.6",
                "-o",
                str(tmp_path / "h.png"),
            ]
        )
        == 0
    )
