"""Hardware description: typed config objects loaded from YAML (one schema, validated on load).

A hardware file describes one accelerator: clock, PE array (size, dataflow, PE modes), on-chip SRAM
buffers, DRAM, vector unit, and the energy table it uses (a separate YAML file, see
:mod:`specsim.hardware.energy`). Units are in the key names (``_ghz``, ``_kib``, ``_bits``,
``_gbps``, ``_ns``, ``_cycles``); every section has a ``source`` string saying where its numbers
come from. Shipped files: ``specsim/data/hardware/*.yaml``. This module never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from specsim.errors import SpecsimError
from specsim.hardware.dram import DRAMPreset, load_preset
from specsim.typedconfig import build, check_names, load_yaml, revalidate, spec

DATAFLOWS = ("ws", "os", "is")
BUFFER_NAMES = ("weights", "activations", "outputs", "kv_cache")
WEIGHT_LAYOUTS = ("nibble_planes", "packed")
VECTOR_OPS = ("softmax", "norm", "activation", "elementwise", "requant")


@dataclass(frozen=True)
class PEMode:
    """One operating mode of the PE: ``lanes`` MACs per PE per cycle laid along GEMM dim ``lane_dim``.

    ``fp16``: 1 lane, 16-bit weights; ``quarter`` (SPEQ draft): the FP16 PE splits into 4 lanes of a
    4-bit BSFP weight times an FP16 activation; ``int4``/``int8``/``mxfp4`` likewise.
    """

    lanes: int = spec(1, ge=1, le=64, doc="MACs per PE per cycle")
    lane_dim: str = spec("k", choices=("k", "n"), doc="GEMM dim the lanes extend (k: more rows, n: more columns)")
    weight_bits: float = spec(16.0, unit="bits", gt=0, le=32, doc="stored bits per weight incl. scale overhead")
    activation_bits: float = spec(16.0, unit="bits", gt=0, le=32, doc="bits per activation operand")
    draft_fetch: bool = spec(
        False,
        doc="weights come from the top-nibble plane of the stored 16-bit words (weight_bits per weight with the "
        "nibble_planes layout: the plane plus the layout's metadata; no copy of their own is stored)",
    )


@dataclass(frozen=True)
class ArrayConfig:
    """The PE array: ``rows`` x ``cols`` PEs and its dataflow."""

    rows: int = spec(ge=1, le=65536, doc="PE rows (the reduction/K side in weight-stationary)")
    cols: int = spec(ge=1, le=65536, doc="PE columns")
    dataflow: str = spec("ws", choices=DATAFLOWS, doc="ws weight-, os output-, is input-stationary")
    mode_switch_cycles: int = spec(
        0, ge=0, le=10**6, unit="cycles", doc="pipeline drain + reconfiguration per mode change"
    )
    accumulator_bits: int = spec(32, ge=8, le=64, unit="bits", doc="partial-sum width in the output buffer")
    preload_bits_per_column: int = spec(
        16,
        ge=1,
        le=65536,
        unit="bits/cycle",
        doc="stationary-operand bits written into each PE column per cycle "
        "(pipelined timing only; SCALE-Sim's one FP16 row per cycle is 16)",
    )
    source: str = spec("", doc="where the numbers come from")


@dataclass(frozen=True)
class BufferConfig:
    """One on-chip SRAM buffer. Bandwidth per port = banks x width_bits / 8 bytes/cycle.

    Fills from DRAM use a dedicated write port; the array reads through ``ports`` read ports.
    With ``double_buffered`` the buffer holds two tiles so the next tile loads during compute.
    """

    size_kib: float = spec(gt=0, le=2**30, unit="KiB")
    banks: int = spec(1, ge=1, le=2**16)
    width_bits: int = spec(64, ge=8, le=2**16, unit="bits", doc="bits per bank access")
    ports: int = spec(1, ge=1, le=64, doc="read ports")
    double_buffered: bool = spec(True)

    @property
    def size_bytes(self) -> int:
        return int(self.size_kib * 1024)

    @property
    def slots(self) -> int:
        """Tiles the buffer holds at once (2 with double buffering)."""
        return 2 if self.double_buffered else 1

    @property
    def slot_bytes(self) -> int:
        return self.size_bytes // self.slots

    @property
    def port_bytes_per_cycle(self) -> int:
        return self.banks * self.width_bits // 8


@dataclass(frozen=True)
class BuffersConfig:
    weights: BufferConfig
    activations: BufferConfig
    outputs: BufferConfig
    kv_cache: BufferConfig
    source: str = spec("")

    def get(self, name: str) -> BufferConfig:
        return getattr(self, name)


@dataclass(frozen=True)
class DRAMConfig:
    """Off-chip DRAM/HBM: ``stacks`` of a preset memory technology (:mod:`specsim.hardware.dram`).

    ``bandwidth_gbps``, ``capacity_gib`` and ``channels`` default to ``stacks`` times the preset's
    per-stack figures, ``burst_bytes`` and ``latency_ns`` to the preset's; any of them may be given
    instead. Requests are served in order by one DMA queue striped over all channels.
    """

    preset: str = spec(
        "hbm2", doc="memory technology: a shipped preset (hbm2, hbm2e, hbm3, lpddr5) or a preset YAML path"
    )
    stacks: int = spec(1, ge=1, le=1024, doc="HBM stacks (or LPDDR packages) of the preset")
    bandwidth_gbps: float | None = spec(
        None, ge=1e-3, le=1e6, unit="GB/s", doc="peak bandwidth summed over stacks (default: stacks x preset)"
    )
    capacity_gib: float | None = spec(
        None, ge=1e-3, le=1e6, unit="GiB", doc="capacity of the memory system (default: stacks x preset)"
    )
    channels: int | None = spec(None, ge=1, le=1 << 20, doc="channels in all (default: stacks x preset)")
    burst_bytes: int | None = spec(
        None, ge=1, le=1 << 20, unit="bytes", doc="transfer granularity: requests round up to bursts (default: preset)"
    )
    latency_ns: float | None = spec(
        None, ge=0, le=1e6, unit="ns", doc="request-to-first-data latency, pipelined (default: preset)"
    )
    weight_layout: str = spec(
        "nibble_planes", choices=WEIGHT_LAYOUTS, doc="nibble_planes: a draft pass fetches only the top-nibble plane"
    )
    source: str = spec("")

    def __post_init__(self) -> None:
        try:
            tech = self.technology
        except SpecsimError:
            return  # validate() reports it with the key's location
        derived = {
            "bandwidth_gbps": self.stacks * tech.bandwidth_gbps.value,
            "capacity_gib": self.stacks * tech.capacity_gib.value,
            "channels": self.stacks * int(tech.channels.value),
            "burst_bytes": int(tech.burst_bytes.value),
            "latency_ns": tech.latency_ns.value,
        }
        for key, value in derived.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)

    def validate(self, where: str) -> None:
        try:
            self.technology  # noqa: B018 (loading the preset is the check)
        except SpecsimError as err:
            raise SpecsimError(f"{where}.preset: {err}") from None

    @property
    def technology(self) -> DRAMPreset:
        """The preset this memory is built from (its per-stack figures, access energy, background power)."""
        return load_preset(self.preset)

    def beyond_preset(self) -> list[str]:
        """What this memory claims beyond ``stacks`` of its preset (bandwidth or capacity given above what
        the stacks deliver): allowed for what-if studies, and shown in the report."""
        tech = self.technology
        peak, room = self.stacks * tech.bandwidth_gbps.value, self.stacks * tech.capacity_gib.value
        return (
            [f"bandwidth {self.bandwidth_gbps:g} GB/s above the {peak:g} GB/s of {self.stacks} x {self.preset}"]
            if self.bandwidth_gbps > peak * (1 + 1e-9)
            else []
        ) + (
            [f"capacity {self.capacity_gib:g} GiB above the {room:g} GiB of {self.stacks} x {self.preset}"]
            if self.capacity_gib > room * (1 + 1e-9)
            else []
        )

    @property
    def capacity_bytes(self) -> int:
        return int(self.capacity_gib * 2**30)

    @property
    def background_mw(self) -> float:
        """Standby + refresh power of all stacks (mW)."""
        return self.stacks * self.technology.background_power.value


@dataclass(frozen=True)
class VectorConfig:
    """Vector / special-function unit: ``lanes`` elements per cycle, ``cycles_per_element`` per op kind."""

    lanes: int = spec(64, ge=1, le=2**20)
    cycles_per_element: dict[str, float] = spec(
        {"softmax": 4.0, "norm": 2.0, "activation": 1.0, "elementwise": 1.0, "requant": 1.0},
        unit="cycles per element per lane",
    )
    source: str = spec("")

    def validate(self, where: str) -> None:
        check_names(f"{where}.cycles_per_element", self.cycles_per_element, VECTOR_OPS, "cycles per element")
        for op, c in self.cycles_per_element.items():
            if not 0 < c <= 1e6:
                raise SpecsimError(f"{where}.cycles_per_element.{op}: expected a value in (0, 1e6], got {c!r}")


@dataclass(frozen=True)
class HardwareConfig:
    """One accelerator. ``energy_table`` names a shipped table or a YAML path relative to this file."""

    name: str
    clock_ghz: float = spec(unit="GHz", ge=1e-3, le=100)
    array: ArrayConfig = spec()
    modes: dict[str, PEMode] = spec()
    buffers: BuffersConfig = spec()
    dram: DRAMConfig = spec()
    vector: VectorConfig = spec()
    energy_table: str = spec("default-28nm", doc="shipped table name or path to an energy YAML")
    source: str = spec("")
    path: str = spec("<built-in>", doc="file this config was loaded from (set by the loader)")

    def validate(self, where: str) -> None:
        if not self.modes:
            raise SpecsimError(f"{where}.modes: expected at least one PE mode")
        acc_bytes = self.array.accumulator_bits / 8
        for name, mode in self.modes.items():
            fold = self.array.rows * self.array.cols * mode.lanes
            for buf in ("weights", "kv_cache"):
                need = math.ceil(fold * max(mode.weight_bits, 16 if buf == "kv_cache" else 0) / 8)
                if self.buffers.get(buf).slot_bytes < need:
                    raise SpecsimError(
                        f"{where}.buffers.{buf}.size_kib: too small for one {self.array.rows}x{self.array.cols} "
                        f"tile in mode {name!r} ({need} bytes per slot needed, "
                        f"{self.buffers.get(buf).slot_bytes} available)"
                    )
            out_cols = self.array.cols * (mode.lanes if mode.lane_dim == "n" else 1)
            need_out = math.ceil(self.array.rows * out_cols * acc_bytes)  # one array of partial sums
            if self.buffers.outputs.size_bytes < need_out:
                raise SpecsimError(
                    f"{where}.buffers.outputs.size_kib: too small for one output tile in mode "
                    f"{name!r} ({need_out} bytes of partial sums needed)"
                )
        need_act = math.ceil(self.array.rows * max(m.lanes for m in self.modes.values()) * 2)
        if self.buffers.activations.slot_bytes < need_act:
            raise SpecsimError(
                f"{where}.buffers.activations.size_kib: too small for one row of activations ({need_act} bytes needed)"
            )

    # -- derived quantities -------------------------------------------------------------------------
    def switch_groups(self, names: tuple[str, ...]) -> np.ndarray:
        """For each PE mode in ``names``, the index of the first mode of ``names`` with the same PE
        configuration: lanes, lane orientation, activation bits and weight element bits (the integer part
        of ``weight_bits``). Modes of one configuration differ only in how their weights are fetched and
        stored (``fp16`` and SPEQ's ``bsfp16``), so moving between them is not a mode switch."""

        def key(name: str) -> tuple:
            m = self.mode(name)
            return (m.lanes, m.lane_dim, m.activation_bits, math.floor(m.weight_bits))

        keys = [key(n) for n in names]
        return np.array([keys.index(k) for k in keys], dtype=np.int64)

    def mode(self, name: str) -> PEMode:
        if name not in self.modes:
            raise SpecsimError(f"{self.path}: unknown PE mode {name!r} (this config has: {', '.join(self.modes)})")
        return self.modes[name]

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bandwidth_gbps / self.clock_ghz

    @property
    def dram_latency_cycles(self) -> int:
        return int(math.ceil(self.dram.latency_ns * self.clock_ghz))

    @property
    def pes(self) -> int:
        return self.array.rows * self.array.cols

    def with_array(self, rows: int, cols: int, dataflow: str | None = None) -> HardwareConfig:
        """A copy with another array size (and dataflow), checked again; used by ``specsim gemm`` and sweeps."""
        new = replace(self, array=replace(self.array, rows=rows, cols=cols, dataflow=dataflow or self.array.dataflow))
        return revalidate(new, f"{self.path} (array {rows}x{cols})")


def resolve_shipped(kind: str, name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """Path of a shipped ``kind`` file (``hardware``/``energy``) by name, or of a user file."""
    p = Path(name_or_path)
    candidates = [p] if p.is_absolute() else ([relative_to / p] if relative_to else []) + [p]
    for c in candidates:
        if c.suffix in (".yaml", ".yml") and _exists(c):
            return c
    shipped = Path(str(resources.files("specsim") / "data" / kind / f"{p.name.removesuffix('.yaml')}.yaml"))
    if _exists(shipped):
        return shipped
    return candidates[0]


def _exists(path: Path) -> bool:
    """Whether ``path`` exists (a name the file system cannot hold, too long or with NUL, does not)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def load_hardware(path: str | Path = "speq-32x32") -> HardwareConfig:
    """Load and validate a hardware YAML (a path, or the name of a shipped file)."""
    path = resolve_shipped("hardware", path)
    data = load_yaml(path)
    data = {**data, "path": str(path)}
    return build(HardwareConfig, data, path)
