"""Energy: action counts (from the engine) times an energy table (YAML), plus static power x time.

As in Accelergy, counting and pricing are separate: the engine produces :class:`Actions` (totals) or
:class:`OpActions` (per operator); an :class:`EnergyTable` (``specsim/data/energy/*.yaml``, every
constant with its unit and source) prices the on-chip parts, the DRAM preset
(:mod:`specsim.hardware.dram`) the memory. :func:`energy_breakdown` returns pJ per component.

Three derivations are shared by every table, so no accelerator is priced by a different rule:

* **SRAM by size.** Energy per 64-bit access is ``a * (size / 1 KiB) ** b``, least-squares fitted
  in log-log space to the published points the table lists (``sram_points``); each buffer is priced
  by its own size, per byte = per 64-bit access / 8.
* **Leakage is power.** Static power of the PE array and the vector unit is leakage power density
  (mW/mm^2) x area (PE area x PEs, vector-lane area x lanes); SRAM leaks per KiB; DRAM draws its
  preset's background power per stack. Static energy = power x simulated seconds, whatever the clock.
* **DRAM per bit.** Energy per bit moved comes from the DRAM preset, not from the accelerator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from specsim.errors import SpecsimError
from specsim.hardware.config import BUFFER_NAMES, HardwareConfig, resolve_shipped
from specsim.typedconfig import Constant, build, cached, check_units, load_yaml, spec

__all__ = [
    "Actions",
    "Constant",
    "EnergyTable",
    "OpActions",
    "SRAMPoint",
    "energy_breakdown",
    "energy_table_for",
    "group_breakdown",
    "load_energy_table",
    "op_energy_pj",
    "static_mw_total",
]


#: unit each single constant of an energy table must carry
TABLE_UNITS = {
    "vector_per_lane_cycle": "pJ/lane-cycle",
    "mode_switch": "pJ",
    "leakage_density": "mW/mm^2",
    "pe_area": "um^2/PE",
    "vector_lane_area": "um^2/lane",
    "sram_leakage": "mW/KiB",
}


@dataclass(frozen=True)
class SRAMPoint:
    """One published SRAM access energy: a memory of ``size_kib`` read 64 bits at a time."""

    size_kib: float = spec(gt=0, unit="KiB")
    pj_per_64bit: float = spec(gt=0, unit="pJ per 64-bit access")
    source: str = spec()


@dataclass(frozen=True)
class EnergyTable:
    """pJ per action and leakage of the on-chip parts (see ``specsim/data/energy/default-28nm.yaml``)."""

    name: str
    technology_nm: float = spec(gt=0, unit="nm")
    sram_points: list[SRAMPoint] = spec(doc="published SRAM access energies the size model is fitted to")
    mac: dict[str, Constant] = spec(doc="pJ/MAC per PE mode")
    vector_per_lane_cycle: Constant = spec(doc="pJ per busy vector lane per cycle")
    mode_switch: Constant = spec(doc="pJ per PE-array mode switch (beyond static power during the switch)")
    leakage_density: Constant = spec(doc="leakage power per logic area (mW/mm^2)")
    pe_area: Constant = spec(doc="area of one PE in um^2/PE (leakage, same-area comparisons)")
    vector_lane_area: Constant = spec(doc="area of one vector lane in um^2/lane (leakage)")
    sram_leakage: Constant = spec(doc="SRAM leakage power per KiB (mW/KiB)")
    source: str = spec("")
    path: str = spec("<built-in>")

    def validate(self, where: str) -> None:
        check_units(self, where, TABLE_UNITS)
        for mode, c in self.mac.items():
            c.expect(f"{where}.mac.{mode}", "pJ/MAC")
        for key in ("pe_area", "vector_lane_area"):
            if not 1e-3 <= getattr(self, key).value <= 1e9:
                raise SpecsimError(f"{where}.{key}.value: expected an area in [0.001, 1e9] um^2")
        if len({p.size_kib for p in self.sram_points}) < 2:
            raise SpecsimError(f"{where}.sram_points: expected points at two or more sizes to fit the size model")
        for i, point in enumerate(self.sram_points):
            if not (1e-6 <= point.size_kib <= 1e9 and 1e-6 <= point.pj_per_64bit <= 1e9):
                raise SpecsimError(
                    f"{where}.sram_points[{i}]: expected a size in [1e-6, 1e9] KiB and an energy in [1e-6, 1e9] pJ"
                )
        a, b = self.sram_fit
        if not (0 <= b <= 2 and 0 < a < 1e12):
            raise SpecsimError(
                f"{where}.sram_points: the size model's exponent is {b:.3g}; published SRAM energies "
                "grow with size between constant and quadratic (0..2): check the points"
            )

    @functools.cached_property
    def sram_fit(self) -> tuple[float, float]:
        """``(a, b)`` of the SRAM size model: pJ per 64-bit access = a * (size / 1 KiB) ** b."""
        x = np.log([p.size_kib for p in self.sram_points])
        y = np.log([p.pj_per_64bit for p in self.sram_points])
        with np.errstate(all="ignore"):  # a degenerate fit is refused by validate(), not warned
            b, log_a = np.polyfit(x, y, 1)
            return float(np.exp(log_a)), float(b)

    def sram_pj_per_byte(self, size_kib: float) -> float:
        """Energy per byte read or written in an SRAM of ``size_kib`` (the fitted size model / 8)."""
        a, b = self.sram_fit
        return a * size_kib**b / 8

    def static_mw(self, hw: HardwareConfig) -> dict[str, float]:
        """Static power (mW) of the on-chip parts of ``hw`` and of its DRAM's stacks."""
        per_um2 = self.leakage_density.value * 1e-6  # mW/mm^2 -> mW/um^2
        sram_kib = sum(hw.buffers.get(b).size_kib for b in BUFFER_NAMES)
        return {
            "pe_array": per_um2 * self.pe_area.value * hw.pes,
            "vector": per_um2 * self.vector_lane_area.value * hw.vector.lanes,
            "sram": self.sram_leakage.value * sram_kib,
            "dram": hw.dram.background_mw,
        }


def load_energy_table(name_or_path: str | Path, relative_to: Path | None = None) -> EnergyTable:
    """An energy table by shipped name or path; ``include: <name or path>`` pulls in the keys of a
    shared file (the table's own keys win), e.g. the SRAM, leakage and vector constants all shipped
    28 nm tables share."""
    path = resolve_shipped("energy", name_or_path, relative_to)
    include = load_yaml(path).get("include")
    paths = (path,) if not isinstance(include, str) else (path, resolve_shipped("energy", include, path.parent))
    return cached(EnergyTable, paths, lambda: _build_energy_table(path))


def _build_energy_table(path: Path) -> EnergyTable:
    data = load_yaml(path)
    include = data.pop("include", None)
    if include is not None:
        if not isinstance(include, str):
            raise SpecsimError(f"{path}: include: expected the name or path of an energy file, got {include!r}")
        inc_path = resolve_shipped("energy", include, path.parent)
        if not inc_path.exists():
            raise SpecsimError(f"{path}: include: no energy file or shipped energy file named {include!r}")
        shared = load_yaml(inc_path)
        if "include" in shared:
            raise SpecsimError(f"{inc_path}: include: an included energy file cannot include another")
        data = {**shared, **data}
    return build(EnergyTable, {**data, "path": str(path)}, path)


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


@dataclass
class OpActions:
    """The same counts per operator (numpy arrays of one entry per operator)."""

    dram_bytes: np.ndarray  #: read + written
    sram_bytes: np.ndarray  #: (ops, 4) read + written per buffer (BUFFER_NAMES order)
    macs: np.ndarray
    mode: np.ndarray  #: PE mode index of each op (into ``modes``)
    modes: tuple[str, ...]
    on_array: np.ndarray  #: bool: array op (else vector unit)
    vector_busy_cycles: np.ndarray
    mode_switches: np.ndarray


def _dram_pj_per_byte(hw: HardwareConfig) -> float:
    return hw.dram.technology.access_energy.value * 8


def energy_breakdown(actions: Actions, table: EnergyTable, hw: HardwareConfig) -> dict[str, float]:
    """Energy in pJ per component: dram, dram.background, sram.<buffer>, pe.<mode>, vector, mode_switch,
    static.<part> (pe_array, vector, sram)."""
    seconds = actions.cycles / (hw.clock_ghz * 1e9)
    out: dict[str, float] = {"dram": (actions.dram_read_bytes + actions.dram_write_bytes) * _dram_pj_per_byte(hw)}
    for b in BUFFER_NAMES:
        out[f"sram.{b}"] = (actions.sram_read_bytes[b] + actions.sram_write_bytes[b]) * table.sram_pj_per_byte(
            hw.buffers.get(b).size_kib
        )
    for mode, macs in actions.macs.items():
        out[f"pe.{mode}"] = macs * table.mac[mode].value
    out["vector"] = actions.vector_busy_cycles * hw.vector.lanes * table.vector_per_lane_cycle.value
    out["mode_switch"] = actions.mode_switches * table.mode_switch.value
    for part, mw in table.static_mw(hw).items():
        out["dram.background" if part == "dram" else f"static.{part}"] = mw * 1e-3 * seconds * 1e12
    return out


def op_energy_pj(ops: OpActions, table: EnergyTable, hw: HardwareConfig) -> np.ndarray:
    """Dynamic energy of each operator in pJ (static energy is power x time: see ``EnergyTable.static_mw``);
    summed over operators it equals the dynamic part of :func:`energy_breakdown`."""
    sram = np.array([table.sram_pj_per_byte(hw.buffers.get(b).size_kib) for b in BUFFER_NAMES])
    mac = np.array([table.mac[m].value for m in ops.modes])[ops.mode.astype(np.int64)]
    return (
        ops.dram_bytes * _dram_pj_per_byte(hw)
        + ops.sram_bytes @ sram
        + np.where(ops.on_array, ops.macs * mac, 0.0)
        + ops.vector_busy_cycles * hw.vector.lanes * table.vector_per_lane_cycle.value
        + ops.mode_switches * table.mode_switch.value
    )


def static_mw_total(table: EnergyTable, hw: HardwareConfig) -> float:
    """All static power of ``hw`` in mW (on-chip leakage and DRAM background)."""
    return sum(table.static_mw(hw).values())


def group_breakdown(breakdown: dict[str, float]) -> dict[str, float]:
    """Coarse components for reports: DRAM (access + background), SRAM, PE array, vector unit, static
    (on-chip leakage) (pJ)."""
    groups = {"dram": 0.0, "sram": 0.0, "pe_array": 0.0, "vector": 0.0, "static": 0.0}
    for key, pj in breakdown.items():
        head = key.split(".")[0]
        groups[
            {
                "dram": "dram",
                "sram": "sram",
                "pe": "pe_array",
                "mode_switch": "pe_array",
                "vector": "vector",
                "static": "static",
            }[head]
        ] += pj
    return groups
