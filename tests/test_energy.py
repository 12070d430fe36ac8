"""Energy pricing on its own: hand counts priced by hand from the YAML constants (read raw here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from specsim.hardware.config import load_hardware
from specsim.hardware.energy import Actions, energy_breakdown, energy_table_for, group_breakdown

DATA = Path(__file__).resolve().parents[1] / "specsim" / "data"


def _raw(kind: str, name: str) -> dict:
    return yaml.safe_load((DATA / kind / f"{name}.yaml").read_text())


def test_breakdown_by_hand():
    hw = load_hardware("speq")
    table = energy_table_for(hw)
    energy, shared, hbm2 = _raw("energy", "default-28nm"), _raw("energy", "shared-28nm"), _raw("dram", "hbm2")
    actions = Actions(
        cycles=2000,
        dram_read_bytes=1000,
        dram_write_bytes=24,
        macs={"fp16": 10_000, "quarter": 4_000},
        vector_busy_cycles=50,
        mode_switches=3,
    )
    actions.sram_read_bytes["weights"] = 512
    pj = energy_breakdown(actions, table, hw)
    assert pj["dram"] == pytest.approx(1024 * 8 * hbm2["access_energy"]["value"])
    assert pj["pe.fp16"] == pytest.approx(10_000 * energy["mac"]["fp16"]["value"])
    assert pj["pe.quarter"] == pytest.approx(4_000 * energy["mac"]["quarter"]["value"])
    assert pj["vector"] == pytest.approx(50 * hw.vector.lanes * shared["vector_per_lane_cycle"]["value"])
    seconds = 2000 / (hw.clock_ghz * 1e9)
    leak_mw_per_um2 = shared["leakage_density"]["value"] * 1e-6
    pe_area = (energy.get("pe_area") or shared["pe_area"])["value"]
    assert pj["static.pe_array"] == pytest.approx(leak_mw_per_um2 * pe_area * 64 * 64 * 1e-3 * seconds * 1e12)
    assert pj["dram.background"] == pytest.approx(4 * hbm2["background_power"]["value"] * 1e-3 * seconds * 1e12)
    a, b = table.sram_fit  # fitted at load: check it reproduces the points' trend
    assert pj["sram.weights"] == pytest.approx(512 * a * hw.buffers.weights.size_kib**b / 8)
    groups = group_breakdown(pj)
    assert sum(groups.values()) == pytest.approx(sum(pj.values()))
    assert groups["dram"] == pytest.approx(pj["dram"] + pj["dram.background"])
