"""Hardware and energy configs: shipped files load; bad files give one line naming file and key, exit 2."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from specsim.errors import SpecsimError
from specsim.hardware.config import load_hardware
from specsim.hardware.energy import energy_table_for, load_energy_table

SHIPPED = Path(__file__).resolve().parents[1] / "specsim" / "data" / "hardware" / "speq.yaml"


def test_shipped_hardware_and_energy_load():
    hw = load_hardware("speq")
    assert (hw.array.rows, hw.array.cols, hw.array.dataflow) == (64, 64, "ws")
    assert hw.modes["quarter"].lanes == 4 and hw.modes["quarter"].draft_fetch
    # four HBM2 stacks of 256 GB/s and 8 GiB (JESD235A), derived from the preset and the stack count
    assert (hw.dram.preset, hw.dram.stacks) == ("hbm2", 4)
    assert hw.dram_bytes_per_cycle == pytest.approx(4 * 256.0)
    assert hw.dram.capacity_gib == 32 and hw.dram.channels == 32 and hw.dram.burst_bytes == 64
    table = energy_table_for(hw)
    assert set(hw.modes) <= set(table.mac)
    assert all(c.source for c in table.mac.values())


def _write(tmp_path, edit):
    data = yaml.safe_load(SHIPPED.read_text())
    edit(data)
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "edit, key, expected",
    [
        (lambda d: d.update(bogus=1), "bogus", "unknown key"),
        (lambda d: d["array"].update(rows="many"), "array.rows", "expected an integer"),
        (lambda d: d["array"].update(rows=0), "array.rows", ">= 1"),
        (lambda d: d["buffers"]["weights"].update(size_kib=-4), "buffers.weights.size_kib", "> 0"),
        (lambda d: d["buffers"]["weights"].update(size_kib=1), "buffers.weights.size_kib", "too small for one"),
        (lambda d: d["array"].update(dataflow="rs"), "array.dataflow", "one of ws, os, is"),
        (lambda d: d["modes"]["quarter"].update(lane_dim="m"), "modes.quarter.lane_dim", "one of k, n"),
        (lambda d: d["modes"]["quarter"].update(speed=2), "modes.quarter.speed", "unknown key"),
        (lambda d: d["dram"].update(bandwidth_gbps=True), "dram.bandwidth_gbps", "expected a number"),
        (lambda d: d["dram"].update(preset="hbm9"), "dram.preset", "unknown DRAM preset 'hbm9'"),
        (lambda d: d["dram"].update(stacks=0), "dram.stacks", ">= 1"),
        (lambda d: d["dram"].update(capacity_gib=-1), "dram.capacity_gib", ">= 0.001"),
        (lambda d: d["dram"].update(weight_layout="planar"), "dram.weight_layout", "nibble_planes"),
        (lambda d: d["vector"]["cycles_per_element"].update(gelu=1), "vector.cycles_per_element.gelu", "unknown key"),
        (lambda d: d.pop("clock_ghz"), "clock_ghz", "missing key"),
    ],
)
def test_bad_hardware_config_names_file_and_key(tmp_path, edit, key, expected):
    path = _write(tmp_path, edit)
    with pytest.raises(SpecsimError) as err:
        load_hardware(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {key}") and expected in msg and "\n" not in msg


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("array: [rows: 3\n")
    with pytest.raises(SpecsimError, match="malformed YAML"):
        load_hardware(bad)
    with pytest.raises(SpecsimError, match="file not found"):
        load_hardware(tmp_path / "missing.yaml")
    twice = tmp_path / "twice.yaml"
    twice.write_text(SHIPPED.read_text() + "\nclock_ghz: 2.0\n")
    with pytest.raises(
        SpecsimError, match=r"twice.yaml: line \d+, column 1 malformed YAML \(key 'clock_ghz' given twice\)"
    ):
        load_hardware(twice)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecsimError, match="binary.yaml: not a UTF-8 text file"):
        load_hardware(binary)
    infinite = _write(tmp_path, lambda d: d.update(clock_ghz=float("inf")))
    with pytest.raises(SpecsimError, match="clock_ghz: expected a finite number"):
        load_hardware(infinite)


def test_energy_table_unit_and_mode_checks(tmp_path):
    table = yaml.safe_load((SHIPPED.parent.parent / "energy" / "default-28nm.yaml").read_text())
    table["include"] = str(SHIPPED.parent.parent / "energy" / "shared-28nm.yaml")
    table["pe_area"]["unit"] = "um^2"
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(table))
    with pytest.raises(SpecsimError, match=r"e.yaml: pe_area.unit: expected 'um\^2/PE'"):
        load_energy_table(tmp_path / "e.yaml")
    table["pe_area"]["unit"] = "um^2/PE"
    del table["mac"]["mxfp4"]
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(table))
    hw_path = _write(tmp_path, lambda d: d.update(energy_table="e.yaml"))
    with pytest.raises(SpecsimError, match=r"mac.mxfp4: missing key"):
        energy_table_for(load_hardware(hw_path))


def test_cli_bad_config_one_line_exit_2(tmp_path):
    path = _write(tmp_path, lambda d: d["array"].update(cols=-3))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "specsim.cli.main",
            "gemm",
            "--m",
            "1",
            "--n",
            "8",
            "--k",
            "8",
            "--config",
            str(path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "array.cols" in lines[0] and "Traceback" not in proc.stderr


def test_unknown_mode_one_line_exit_2(capsys):
    from specsim.cli.main import main

    assert main(["gemm", "--m", "1", "--n", "8", "--k", "8", "--mode", "fp8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown PE mode 'fp8'" in err[0] and "speq.yaml" in err[0]


def test_exponent_notation_is_a_number(tmp_path):
    """PyYAML reads 1e-3 as text (YAML 1.1 floats need a dot); specsim reads it as the number a user means,
    in files and in --set values."""
    from specsim.typedconfig import parse_value

    path = tmp_path / "hw.yaml"
    path.write_text(SHIPPED.read_text().replace("clock_ghz: 1.0 ", "clock_ghz: 1e0 "))
    assert load_hardware(path).clock_ghz == 1.0
    assert parse_value("1e-3") == 0.001 and parse_value("2E5") == 2e5 and parse_value("1e") == "1e"
