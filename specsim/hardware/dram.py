"""DRAM presets: the per-stack (HBM) or per-package (LPDDR) figures of a memory technology.

A hardware config's ``dram`` section names a preset and a stack count; its peak bandwidth, capacity
and channel count default to ``stacks x`` the preset's per-stack figures, and each can be given
explicitly instead (bandwidth and capacity are separate parameters: a config may run fewer GB/s
than the stacks could deliver, or hold more capacity). The preset also prices the memory: access
energy per bit moved, and background power (standby, refresh) per stack while the run lasts.

Shipped presets: ``specsim/data/dram/<name>.yaml`` (``hbm2``, ``hbm2e``, ``hbm3``, ``lpddr5``); a
preset may also be a path to a YAML file of the same schema. Every figure is a
:class:`~specsim.typedconfig.Constant` with its unit and source.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from specsim.errors import SpecsimError
from specsim.typedconfig import Constant, build, cached, check_units, load_yaml, spec

#: unit each preset figure must carry
PRESET_UNITS = {
    "bandwidth_gbps": "GB/s",
    "capacity_gib": "GiB",
    "channels": "channels",
    "burst_bytes": "bytes",
    "latency_ns": "ns",
    "access_energy": "pJ/bit",
    "background_power": "mW",
}


@dataclass(frozen=True)
class DRAMPreset:
    """One memory technology, per stack (HBM) or package (LPDDR)."""

    name: str
    bandwidth_gbps: Constant = spec(doc="peak bandwidth of one stack (GB/s)")
    capacity_gib: Constant = spec(doc="capacity of one stack (GiB)")
    channels: Constant = spec(doc="independent channels of one stack")
    burst_bytes: Constant = spec(doc="bytes of one access (burst length x channel width)")
    latency_ns: Constant = spec(doc="request-to-first-data latency (ns)")
    access_energy: Constant = spec(doc="energy per bit read or written over the interface (pJ/bit)")
    background_power: Constant = spec(doc="standby + refresh power of one stack while powered (mW)")
    description: str = spec("")
    unit_name: str = spec("stack", choices=("stack", "package"), doc="what one of ``stacks`` is")
    path: str = spec("<built-in>")

    def validate(self, where: str) -> None:
        check_units(self, where, PRESET_UNITS)
        for key in ("bandwidth_gbps", "capacity_gib", "channels", "burst_bytes"):
            if not 1e-3 <= getattr(self, key).value <= 1e6:
                raise SpecsimError(f"{where}.{key}.value: expected a value in [0.001, 1e6] ({PRESET_UNITS[key]})")
        for key in ("channels", "burst_bytes"):
            if not float(getattr(self, key).value).is_integer():
                raise SpecsimError(f"{where}.{key}.value: expected a whole number ({PRESET_UNITS[key]})")


def shipped_presets() -> list[str]:
    folder = resources.files("specsim") / "data" / "dram"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name_or_path: str) -> DRAMPreset:
    """A shipped preset by name, or a preset YAML file by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = Path(str(resources.files("specsim") / "data" / "dram" / f"{name_or_path}.yaml"))
        if not path.is_file():
            raise SpecsimError(
                f"unknown DRAM preset {name_or_path!r} (shipped: {', '.join(shipped_presets())}; "
                "or a path to a preset .yaml file)"
            )
    return cached(DRAMPreset, (path,), lambda: build(DRAMPreset, {**load_yaml(path), "path": str(path)}, path))
