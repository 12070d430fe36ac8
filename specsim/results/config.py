"""Run configs (``hwconfigs/*.yaml``): one accelerator, its decoding, the workloads and the baselines.

One file names an accelerator and its hardware (a shipped or local hardware file via ``include``,
plus overrides), its decoding (speculative with a draft scheme, gamma and verify mode, or
autoregressive; the PE mode of each chain level), the workloads (real traces and/or shape-only
models with an acceptance profile) and the baselines to compare against: other run-config files,
of which only the accelerator part is used. The comparison basis says what the baselines share with
the main accelerator: ``same_pe_count`` (their arrays take its rows x cols), ``same_area`` (their
arrays are scaled to its PE-array area using each energy table's PE area) or ``same_bandwidth``
(their DRAM takes its bandwidth); a list combines ``same_bandwidth`` with one of the other two.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from specsim.errors import SpecsimError
from specsim.hardware.config import HardwareConfig, resolve_shipped
from specsim.hardware.energy import EnergyTable, energy_table_for
from specsim.typedconfig import build, load_yaml, override, set_key, spec

BASES = ("same_pe_count", "same_area", "same_bandwidth")


@dataclass(frozen=True)
class DecodingConfig:
    """How the accelerator decodes and which PE mode runs each chain level's weights."""

    kind: str = spec("autoregressive", choices=("speculative", "autoregressive"))
    draft: str = spec("none", doc="draft scheme of its traces (speq, mxfp4, multilevel, hierarchical, ...)")
    gamma: int = spec(4, ge=1, le=16, doc="draft tokens per round (shape workloads; traces carry theirs)")
    verify: str = spec("greedy", choices=("greedy", "sample"))
    level_modes: list[str] = spec(["fp16"], doc="PE mode for each level's non-FP16 weights, target first")
    attention_mode: str = spec("fp16", doc="PE mode of QK^T and PV (FP16 KV cache)")
    trace: str = spec("", doc="which trace of a workload this accelerator replays (default: its name)")
    formats: list[str] = spec(["fp16"], doc="weight format per level, target first: each trace's level "
                                            "formats must start with these; shape-only workloads use them")
    olive: bool = spec(False, doc="OliVe edge decoders on every quantized GEMM")
    tender_groups: bool = spec(False, doc="Tender accumulator shifts with the trace's channel groups")
    groups: int = spec(1, ge=1, le=64, doc="Tender channel groups G where a trace measured none (shape workloads)")
    requant: bool = spec(False, doc="vector-unit requantization after every quantized GEMM (Tender)")

    def validate(self, where: str) -> None:
        if self.kind == "speculative" and (self.draft == "none" or len(self.level_modes) < 2):
            raise SpecsimError(f"{where}: a speculative accelerator needs a draft scheme and a PE mode for "
                               "each level (level_modes: [target, draft, ...])")
        if len(self.formats) > len(self.level_modes):
            raise SpecsimError(f"{where}.formats: more levels than level_modes")
        if not self.formats:
            raise SpecsimError(f"{where}.formats: expected at least the target's weight format")


@dataclass(frozen=True)
class ShapeWorkload:
    """A model too large to run: an architecture file plus an acceptance profile (SHAPE-DERIVED)."""

    architecture: str
    acceptance: dict[str, float | str] = spec({}, doc="per speculative accelerator (trace role): an i.i.d. "
                                                     "alpha in [0, 1], or a trace whose per-position "
                                                     "acceptance is sampled")
    prompts: int = spec(2, ge=1, le=256)
    prompt_len: int = spec(128, ge=1, unit="tokens")
    max_new_tokens: int = spec(128, ge=1, unit="tokens")
    seed: int = spec(0, ge=0)


@dataclass(frozen=True)
class WorkloadConfig:
    """A workload: real traces keyed by accelerator (trace role), or a shape-only model."""

    name: str
    traces: dict[str, str] = spec({}, doc="trace file per accelerator (paths relative to this file)")
    shape: ShapeWorkload | None = None

    def validate(self, where: str) -> None:
        if self.shape is not None:
            for role, a in self.shape.acceptance.items():
                if isinstance(a, float) and not 0 <= a <= 1:
                    raise SpecsimError(f"{where}.shape.acceptance.{role}: expected an alpha in [0, 1] or a trace "
                                       f"path, got {a!r}")
        if bool(self.traces) == (self.shape is not None):
            raise SpecsimError(f"{where}: give either 'traces' or 'shape'")


@dataclass(frozen=True)
class RunConfig:
    """One ``hwconfigs`` file (see the module docstring)."""

    name: str
    hardware: HardwareConfig
    description: str = spec("")
    decoding: DecodingConfig = spec(DecodingConfig())
    workloads: list[WorkloadConfig] = spec([])
    baselines: dict[str, str] = spec({}, doc="baseline name -> run-config file (its accelerator part)")
    comparison: str | list[str] = spec("same_pe_count", choices=BASES,
                                       doc="what the baselines share with this accelerator: one basis or a "
                                           "list, e.g. [same_pe_count, same_bandwidth] for bandwidth sweeps")
    path: str = spec("<built-in>")

    @property
    def bases(self) -> tuple[str, ...]:
        """The comparison bases, in the order they are applied."""
        return (self.comparison,) if isinstance(self.comparison, str) else tuple(self.comparison)

    def validate(self, where: str) -> None:
        bases = self.bases
        if not bases:
            raise SpecsimError(f"{where}.comparison: expected at least one of {', '.join(BASES)}")
        if len(set(bases)) != len(bases):
            raise SpecsimError(f"{where}.comparison: a basis is listed twice ({', '.join(bases)})")
        if {"same_pe_count", "same_area"} <= set(bases):
            raise SpecsimError(f"{where}.comparison: same_pe_count and same_area both size the array; "
                               "expected one of them (optionally with same_bandwidth)")

    @property
    def trace_role(self) -> str:
        return self.decoding.trace or self.name

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else Path(self.path).parent / p


@dataclass(frozen=True)
class Accelerator:
    """A simulated accelerator: its name, run config, hardware after the comparison basis, energy table."""

    name: str
    config: RunConfig
    hardware: HardwareConfig
    energy: EnergyTable


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _raw_config(path: Path) -> dict:
    """The file's mapping with its ``hardware`` include resolved and merged (before validation)."""
    data = load_yaml(path)
    hw = data.get("hardware")
    if hw is None:
        raise SpecsimError(f"{path}: hardware: missing key (a shipped hardware name, a path, or a mapping "
                           "with 'include' and overrides)")
    if isinstance(hw, str):
        hw = {"include": hw}
    if not isinstance(hw, dict):
        raise SpecsimError(f"{path}: hardware: expected a name, a path or a mapping, got {hw!r}")
    hw = dict(hw)
    include = hw.pop("include", None)
    if include is not None:
        inc_path = resolve_shipped("hardware", str(include), path.parent)
        if not inc_path.exists():
            raise SpecsimError(f"{path}: hardware.include: no hardware file or shipped hardware named {include!r}")
        hw = _merge(load_yaml(inc_path), hw)
        hw.setdefault("energy_table", "default-28nm")
        hw["path"] = str(inc_path)
    else:
        hw["path"] = str(path)
    return {**data, "hardware": hw, "path": str(path)}


def load_run_config(path: str | Path, overrides: list[str] = (), values: list[tuple[str, Any]] = (),
                    label: str = "--set") -> RunConfig:
    """Load and validate a run config; ``overrides`` are ``key.path=value`` strings (``--set``),
    ``values`` (key, value) pairs already parsed (a sweep point; errors name them with ``label``)."""
    path = Path(path)
    data = _raw_config(path)
    for assignment in overrides:
        override(data, RunConfig, assignment, path)
    for key, value in values:
        set_key(data, RunConfig, key, copy.deepcopy(value), path, label)
    cfg = build(RunConfig, data, path)
    energy_table_for(cfg.hardware)   # every mode priced, table readable
    return cfg


def _apply_basis(main: RunConfig, base: RunConfig, main_energy: EnergyTable, energy: EnergyTable) -> HardwareConfig:
    hw = base.hardware
    for basis in main.bases:
        if basis == "same_pe_count":
            hw = hw.with_array(main.hardware.array.rows, main.hardware.array.cols)
        elif basis == "same_area":
            scale = math.sqrt(main_energy.pe_area.value / energy.pe_area.value)
            hw = hw.with_array(max(1, round(main.hardware.array.rows * scale)),
                               max(1, round(main.hardware.array.cols * scale)))
        else:
            hw = replace(hw, dram=replace(hw.dram, bandwidth_gbps=main.hardware.dram.bandwidth_gbps))
    return hw


def accelerators(cfg: RunConfig, cache: dict | None = None) -> list[Accelerator]:
    """The main accelerator first, then each baseline with the comparison basis applied.

    ``cache`` (any dict kept by the caller, e.g. across the points of a sweep) memoizes the baselines'
    run configs by file, modification time and size.
    """
    main_energy = energy_table_for(cfg.hardware)
    out = [Accelerator(cfg.name, cfg, cfg.hardware, main_energy)]
    for name, rel in cfg.baselines.items():
        p = cfg.resolve(rel)
        if not p.exists():
            raise SpecsimError(f"{cfg.path}: baselines.{name}: no such run-config file {p}")
        st = p.stat()
        key = ("baseline", str(p.resolve()), st.st_mtime_ns, st.st_size)
        if cache is not None and key in cache:
            base = cache[key]
        else:
            base = load_run_config(p)
            if cache is not None:
                cache[key] = base
        base = replace(base, name=name)
        energy = energy_table_for(base.hardware)
        out.append(Accelerator(name, base, _apply_basis(cfg, base, main_energy, energy), energy))
    return out
