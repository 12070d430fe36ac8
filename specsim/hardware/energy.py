"""Energy: action counts (from the engine) times an energy table (YAML), plus static power x time.

As in Accelergy, counting and pricing are separate: the engine produces :class:`Actions`; an
:class:`EnergyTable` (``specsim/data/energy/*.yaml``, every constant with its unit and source)
prices them. :func:`energy_breakdown` returns pJ per component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from specsim.errors import SpecsimError
from specsim.hardware.config import BUFFER_NAMES, HardwareConfig, resolve_shipped
from specsim.typedconfig import build, check_names, load_yaml, spec

STATIC_UNITS = {"pe_array": "mW/PE", "sram": "mW/KiB", "vector": "mW", "dram": "mW"}


@dataclass(frozen=True)
class Constant:
    """One number of an energy table: value, unit (checked) and where it comes from."""

    value: float = spec(ge=0)
    unit: str = spec()
    source: str = spec()


@dataclass(frozen=True)
class EnergyTable:
    """pJ per action and static power per component (see ``specsim/data/energy/default-28nm.yaml``)."""

    name: str
    technology_nm: float = spec(gt=0, unit="nm")
    dram_per_byte: Constant = spec(doc="pJ/byte moved over the DRAM interface (read or write)")
    sram_per_byte: dict[str, Constant] = spec(doc="pJ/byte read or written, per buffer")
    mac: dict[str, Constant] = spec(doc="pJ/MAC per PE mode")
    vector_per_lane_cycle: Constant = spec(doc="pJ per busy vector lane per cycle")
    mode_switch: Constant = spec(doc="pJ per PE-array mode switch")
    static: dict[str, Constant] = spec(doc="static power: pe_array mW/PE, sram mW/KiB, vector mW, dram mW")
    pe_area: Constant = spec(doc="area of one PE in um^2/PE (for same-area comparisons)")
    source: str = spec("")
    path: str = spec("<built-in>")

    def validate(self, where: str) -> None:
        def unit(key: str, c: Constant, expected: str) -> None:
            if c.unit != expected:
                raise SpecsimError(f"{where}.{key}.unit: expected {expected!r}, got {c.unit!r}")
        unit("dram_per_byte", self.dram_per_byte, "pJ/byte")
        unit("vector_per_lane_cycle", self.vector_per_lane_cycle, "pJ/lane-cycle")
        unit("mode_switch", self.mode_switch, "pJ")
        unit("pe_area", self.pe_area, "um^2/PE")
        check_names(f"{where}.sram_per_byte", self.sram_per_byte, BUFFER_NAMES, "pJ/byte of that buffer")
        for b, c in self.sram_per_byte.items():
            unit(f"sram_per_byte.{b}", c, "pJ/byte")
        for m, c in self.mac.items():
            unit(f"mac.{m}", c, "pJ/MAC")
        check_names(f"{where}.static", self.static, STATIC_UNITS, "static power")
        for k, expected in STATIC_UNITS.items():
            unit(f"static.{k}", self.static[k], expected)


def load_energy_table(name_or_path: str | Path, relative_to: Path | None = None) -> EnergyTable:
    path = resolve_shipped("energy", name_or_path, relative_to)
    return build(EnergyTable, {**load_yaml(path), "path": str(path)}, path)


def energy_table_for(hw: HardwareConfig) -> EnergyTable:
    """The energy table a hardware config names; every PE mode of ``hw`` must be priced."""
    here = Path(hw.path).parent if hw.path != "<built-in>" else None
    table = load_energy_table(hw.energy_table, here)
    for mode in hw.modes:
        if mode not in table.mac:
            raise SpecsimError(f"{table.path}: mac.{mode}: missing key (pJ/MAC for PE mode {mode!r} of {hw.path})")
    return table


@dataclass
class Actions:
    """What the hardware did (counts, no energy): the engine's output that energy tables price."""

    cycles: int = 0
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    sram_read_bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUFFER_NAMES, 0))
    sram_write_bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUFFER_NAMES, 0))
    macs: dict[str, int] = field(default_factory=dict)
    array_busy_cycles: dict[str, int] = field(default_factory=dict)
    vector_busy_cycles: int = 0
    mode_switches: int = 0


def energy_breakdown(actions: Actions, table: EnergyTable, hw: HardwareConfig) -> dict[str, float]:
    """Energy in pJ per component: dram, sram.<buffer>, pe.<mode>, vector, mode_switch, static.<part>."""
    seconds = actions.cycles / (hw.clock_ghz * 1e9)
    out: dict[str, float] = {"dram": (actions.dram_read_bytes + actions.dram_write_bytes) * table.dram_per_byte.value}
    for b in BUFFER_NAMES:
        out[f"sram.{b}"] = (actions.sram_read_bytes[b] + actions.sram_write_bytes[b]) * table.sram_per_byte[b].value
    for mode, macs in actions.macs.items():
        out[f"pe.{mode}"] = macs * table.mac[mode].value
    out["vector"] = actions.vector_busy_cycles * hw.vector.lanes * table.vector_per_lane_cycle.value
    out["mode_switch"] = actions.mode_switches * table.mode_switch.value
    sram_kib = sum(hw.buffers.get(b).size_kib for b in BUFFER_NAMES)
    static_mw = {"pe_array": table.static["pe_array"].value * hw.pes, "sram": table.static["sram"].value * sram_kib,
                 "vector": table.static["vector"].value, "dram": table.static["dram"].value}
    for k, mw in static_mw.items():
        out[f"static.{k}"] = mw * 1e-3 * seconds * 1e12
    return out


def group_breakdown(breakdown: dict[str, float]) -> dict[str, float]:
    """Coarse components for reports: DRAM, SRAM, PE array, vector unit, static (pJ)."""
    groups = {"dram": 0.0, "sram": 0.0, "pe_array": 0.0, "vector": 0.0, "static": 0.0}
    for key, pj in breakdown.items():
        head = key.split(".")[0]
        groups[{"dram": "dram", "sram": "sram", "pe": "pe_array", "mode_switch": "pe_array", "vector": "vector",
                "static": "static"}[head]] += pj
    return groups
