"""Run configs (``hwconfigs/*.yaml``): one accelerator, its decoding, the workloads and the baselines.

One file names an accelerator and its hardware (a shipped or local hardware file via ``include``,
plus overrides), its decoding (speculative with a draft scheme, gamma and verify mode, or
autoregressive; the PE mode of each chain level), the workloads (real traces and/or shape-only
models with an acceptance profile) and the baselines to compare against: other run-config files,
of which only the accelerator part is used.

Like for like. The comparison basis (``comparison``) lists what every baseline shares with the main
accelerator; by default (``like_for_like``) that is everything they have in common: the PE count and
preload path (``same_pe_count``, or ``same_area``: arrays scaled to the main array's area by each energy
table's PE area), the clock (``same_clock``), the whole memory system (``same_memory``: DRAM preset, stacks,
bandwidth, capacity, channels, burst, latency; or ``same_bandwidth``: the bandwidth alone) and the
SRAM buffers (``same_buffers``). The basis is applied to the baseline's raw config before it is
validated, so ``--set hardware.dram.bandwidth_gbps=128`` moves every accelerator. A deliberate
difference is written into the config as a baseline-specific override (``baselines.<name>.overrides``,
applied after the basis); whatever still differs is listed by :func:`differences` and shown under
the report's table.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from specsim.errors import SpecsimError, cut, shown
from specsim.hardware.config import BUFFER_NAMES, HardwareConfig, resolve_shipped
from specsim.hardware.energy import EnergyTable, energy_table_for, load_energy_table
from specsim.methods import NoParams, get_method, method_for
from specsim.methods.base import KINDS
from specsim.paths import beside
from specsim.trace.batching import MAX_BATCH
from specsim.trace.schedule import ACCEPTANCE_MODES
from specsim.trace.tracefile import MAX_DRAFT
from specsim.typedconfig import build, file_key, load_yaml, override, set_key, spec

#: what a baseline may share with the main accelerator (``comparison``); ``like_for_like`` is all of
#: LIKE_FOR_LIKE, the default
BASES = ("same_pe_count", "same_area", "same_clock", "same_memory", "same_bandwidth", "same_buffers")
LIKE_FOR_LIKE = ("same_pe_count", "same_clock", "same_memory", "same_buffers")
_EXCLUSIVE = (("same_pe_count", "same_area"), ("same_memory", "same_bandwidth"))
#: DRAM keys a same_memory basis copies (the weight layout is the accelerator's own data layout)
SHARED_DRAM_KEYS = ("preset", "stacks", "bandwidth_gbps", "capacity_gib", "channels", "burst_bytes", "latency_ns")
#: the reference accelerator when a config names none; unlike a named one it may be absent (then the report
#: has no ratios to a reference)
DEFAULT_REFERENCE = "fp16"


DEFAULT_GAMMA = 4  #: draft tokens per round of a speculative accelerator whose config gives none


def element_bits(fmt: str) -> int | None:
    """Bits of one weight element of a weight format named in traces and configs (scales and metadata
    excluded): ``bsfp_draft*`` 4 (the top nibble of a BSFP word), otherwise the number the name ends in
    (``fp16`` 16, ``mxfp4`` 4, ``int8`` 8, ``int4_g128`` 4, ...); ``None`` for a name without one."""
    if fmt.startswith("bsfp_draft"):
        return 4
    match = re.fullmatch(r"[a-z]+?([1-9][0-9]?)(?:_g[1-9][0-9]*)?", fmt)
    return int(match[1]) if match else None


@dataclass(frozen=True)
class DecodingConfig:
    """How the accelerator decodes: its method (a plug-in of :mod:`specsim.methods`) with the method's
    parameters, the draft scheme and gamma, and the PE mode of each chain level.

    Validated once at load: the method's kind and parameters, the draft scheme against the method, and
    (in :meth:`RunConfig.validate`) every PE mode against the hardware. ``method`` left empty means the
    method that replays ``draft`` (speculative) or plain ``fp16`` decoding; ``kind`` left empty means
    the method's."""

    method: str = spec(
        "",
        doc="accelerator method plug-in (specsim methods lists them); empty: the one "
        "that replays `draft`, or fp16 for autoregressive decoding",
    )
    params: dict[str, Any] = spec({}, doc="the method's parameters (specsim methods lists them with units)")
    kind: str | None = spec(None, choices=KINDS, doc="speculative or autoregressive; default: the method's")
    draft: str = spec("none", doc="draft scheme of its traces (speq, mxfp4, multilevel, hierarchical, ...)")
    gamma: int | Literal["auto"] | None = spec(
        None,
        ge=1,
        le=MAX_DRAFT,
        doc="draft tokens per round of shape workloads (speculative methods; default 4; a trace replays the "
        "gamma it was recorded with, a difference is noted in the report); auto: each round (each serving "
        "iteration) drafts the length in 1..8 that maximises the expected tokens per second of the batch, "
        "from the engine's pass costs at the batch's size and context and the acceptance profile",
    )
    verify: str | None = spec(
        None, choices=("greedy", "sample"), doc="verify mode of the traces (speculative methods; default greedy)"
    )
    batch: int = spec(
        1,
        ge=1,
        le=MAX_BATCH,
        unit="sequences",
        doc="sequences decoded together in lockstep (speculative rounds and plain steps); every baseline "
        "takes the main accelerator's batch unless its overrides set one (shown as a difference)",
    )
    level_modes: list[str] = spec(["fp16"], doc="PE mode for each level's non-FP16 weights, target first")
    attention_mode: str = spec("fp16", doc="PE mode of QK^T and PV (FP16 KV cache)")
    fp16_mode: str = spec(
        "",
        doc="PE mode of GEMMs whose weights are FP16 values (an FP16 target, every FP16 lm_head); empty: fp16 (the "
        "target's mode on hardware without one), or a mode "
        "that reads them from another storage (SPEQ's bsfp16: BSFP words plus the draft layout's per-block metadata)",
    )
    trace: str = spec("", doc="which trace of a workload this accelerator replays (default: its name)")
    formats: list[str] = spec(
        ["fp16"],
        doc="weight format per level, target first: each trace's level "
        "formats must start with these; shape-only workloads use them",
    )
    lm_head_formats: list[str] = spec(
        ["fp16"],
        doc="weight format of each level's lm_head, target (fp16) first; levels not listed: fp16. A trace's "
        "lm_head formats (specsim trace --draft-lm-head) must start with these; shape-only workloads use them",
    )
    lm_head_modes: list[str] = spec(
        [],
        doc="PE mode of each level's non-FP16 lm_head, target first (an FP16 lm_head runs in decoding.fp16_mode); "
        "default: the level's mode when its lm_head holds the level's own weight format",
    )
    method_params: Any = field(default=None, init=False, compare=False, repr=False)  #: typed, set by validate

    def lm_head_format(self, level: int) -> str:
        """Weight format (prefix) of level ``level``'s lm_head (``fp16`` when not listed)."""
        return self.lm_head_formats[level] if level < len(self.lm_head_formats) else "fp16"

    def lm_head_mode(self, level: int) -> str | None:
        """PE mode of level ``level``'s lm_head when it is not FP16 (``None``: FP16, the fp16 mode rule)."""
        if self.lm_head_format(level) == "fp16":
            return None
        if level < len(self.lm_head_modes) and self.lm_head_modes[level]:
            return self.lm_head_modes[level]
        return self.level_modes[level]

    def validate(self, where: str) -> None:
        if not self.formats:
            raise SpecsimError(f"{where}.formats: expected at least the target's weight format")
        method = (
            get_method(self.method, f"{where}.method")
            if self.method
            else method_for(self.kind or "autoregressive", self.draft, self.formats[0], where)
        )
        if self.kind and self.kind != method.kind:
            raise SpecsimError(f"{where}.kind: method {method.name!r} is {method.kind}, not {self.kind}")
        if self.params and method.Params is NoParams:
            raise SpecsimError(f"{where}.params: method {method.name!r} takes no parameters")
        object.__setattr__(self, "method", method.name)  # normalised once, at load
        object.__setattr__(self, "kind", method.kind)
        object.__setattr__(self, "method_params", method.params(self.params, f"{where}.params"))
        if method.kind == "speculative":
            self._check_speculative(method, where)
        else:
            for key, value in (
                ("draft", None if self.draft == "none" else self.draft),
                ("gamma", self.gamma),
                ("verify", self.verify),
            ):
                if value is not None:
                    raise SpecsimError(
                        f"{where}.{key}: method {method.name!r} decodes autoregressively, so "
                        f"{key} {value!r} would have no effect; remove it"
                    )
        if len(self.formats) > len(self.level_modes):
            raise SpecsimError(f"{where}.formats: more levels than level_modes")
        self._check_lm_heads(where)
        if not method.accepts_target(self.formats[0]):
            raise SpecsimError(
                f"{where}.formats[0]: method {method.name!r} expects a target format starting with "
                f"{' or '.join(method.target_formats)}, got {self.formats[0]!r}"
            )

    def _check_lm_heads(self, where: str) -> None:
        """lm_head formats and modes per level: the target's is FP16; a draft lm_head in a format other than
        its level's needs its own PE mode (the modes themselves are checked against the hardware)."""
        for key, values in (("lm_head_formats", self.lm_head_formats), ("lm_head_modes", self.lm_head_modes)):
            if len(values) > len(self.level_modes):
                raise SpecsimError(f"{where}.{key}: {len(values)} levels, level_modes gives {len(self.level_modes)}")
        if self.lm_head_formats and self.lm_head_formats[0] != "fp16":
            raise SpecsimError(
                f"{where}.lm_head_formats[0]: the target's lm_head is FP16 (lossless verification); got "
                f"{shown(self.lm_head_formats[0])}"
            )
        for level, mode in enumerate(self.lm_head_modes):
            if mode not in ("", "fp16") and self.lm_head_format(level) == "fp16":
                raise SpecsimError(
                    f"{where}.lm_head_modes[{level}]: level {level}'s lm_head is FP16 (decoding.lm_head_formats), which "
                    "runs in decoding.fp16_mode; remove this mode or give the level's lm_head format"
                )
        for level, fmt in enumerate(self.lm_head_formats):
            own = self.formats[level] if level < len(self.formats) else None
            explicit = level < len(self.lm_head_modes) and self.lm_head_modes[level]
            if fmt != "fp16" and not explicit and not (own and (fmt.startswith(own) or own.startswith(fmt))):
                raise SpecsimError(
                    f"{where}.lm_head_formats[{level}]: a {fmt!r} lm_head is not the level's own format "
                    f"({own!r}), so its PE mode is not the level's; give decoding.lm_head_modes[{level}] (a mode "
                    "of the hardware with FP16 activations and lanes wide enough for its weights)"
                )

    def _check_speculative(self, method, where: str) -> None:
        """Draft scheme, levels and the defaults of gamma and verify (normalised once, at load)."""
        if not method.replays(self.draft):
            raise SpecsimError(
                f"{where}.draft: method {method.name!r} replays draft schemes "
                f"{', '.join(method.drafts)}, not {self.draft!r}"
            )
        if len(self.level_modes) < 2 or len(self.formats) < 2:
            raise SpecsimError(
                f"{where}: a speculative accelerator needs a PE mode and a weight format for the "
                "target and at least one draft level (level_modes and formats: [target, draft, ...])"
            )
        object.__setattr__(self, "gamma", DEFAULT_GAMMA if self.gamma is None else self.gamma)
        object.__setattr__(self, "verify", "greedy" if self.verify is None else self.verify)

    @property
    def method_plugin(self):
        """The registered :class:`~specsim.methods.Method` (``method`` is normalised at load)."""
        return get_method(self.method)

    def lowering(self):
        """The method's lowering with its typed parameters bound (for :func:`specsim.hardware.lowering.level_templates`)."""
        plugin, params = self.method_plugin, self.method_params
        return lambda level: plugin.lower(params, level)


@dataclass(frozen=True)
class ShapeWorkload:
    """A model too large to run: an architecture file plus an acceptance profile (SHAPE-DERIVED)."""

    architecture: str
    acceptance: dict[str, float | str] = spec(
        {},
        doc="per speculative accelerator (trace role): an i.i.d. "
        "alpha in [0, 1], or a trace whose per-position "
        "acceptance is used",
    )
    acceptance_mode: str = spec(
        "sampled",
        choices=ACCEPTANCE_MODES,
        doc="sampled: rounds drawn at random (speedups get a confidence interval over "
        "the prompts); expected: rounds at the profile's expectation (no sampling)",
    )
    prompts: int = spec(
        8,
        ge=1,
        le=256,
        doc="sequences decoded one after another: independent replicas of "
        "the sampled acceptance (the confidence interval's sampling unit)",
    )
    prompt_len: int = spec(128, ge=1, le=131072, unit="tokens")
    max_new_tokens: int = spec(128, ge=1, le=16384, unit="tokens")
    seed: int = spec(
        0, ge=0, le=2**63 - 1, doc="base seed; every workload draws from its own stream (seed, workload name)"
    )


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
                    raise SpecsimError(
                        f"{where}.shape.acceptance.{role}: expected an alpha in [0, 1] or a trace path, got {a!r}"
                    )
        if bool(self.traces) == (self.shape is not None):
            raise SpecsimError(f"{where}: give either 'traces' or 'shape'")


@dataclass(frozen=True)
class BaselineRef:
    """A baseline: its run-config file, and keys of that config changed for this comparison only."""

    config: str = spec(doc="run-config file (relative to the main config)")
    overrides: dict[str, Any] = spec(
        {},
        doc="nested mapping of the baseline's run-config keys, applied after "
        "the comparison basis (a deliberate difference, shown in the report)",
    )


@dataclass(frozen=True)
class RunConfig:
    """One ``hwconfigs`` file (see the module docstring)."""

    name: str
    hardware: HardwareConfig
    description: str = spec("")
    decoding: DecodingConfig = spec(DecodingConfig())
    workloads: list[WorkloadConfig] = spec([])
    baselines: dict[str, BaselineRef | str] = spec(
        {}, doc="baseline name -> run-config file, or {config, overrides} (only its accelerator part is used)"
    )
    comparison: str | list[str] = spec(
        "like_for_like",
        choices=(*BASES, "like_for_like"),
        doc="what the baselines share with this accelerator: like_for_like "
        f"(= {', '.join(LIKE_FOR_LIKE)}) or a list of bases",
    )
    confidence: float = spec(
        0.95, ge=0.5, le=0.9999, doc="level of the confidence intervals of speedups and energy efficiency"
    )
    reference: str = spec(
        DEFAULT_REFERENCE,
        doc="the accelerator every speedup and energy ratio is normalised to (the main accelerator or a baseline name)",
    )
    path: str = spec("<built-in>")

    @property
    def bases(self) -> tuple[str, ...]:
        """The comparison bases, in the order they are applied (``like_for_like`` expanded)."""
        listed = (self.comparison,) if isinstance(self.comparison, str) else tuple(self.comparison)
        return tuple(
            dict.fromkeys(b for item in listed for b in (LIKE_FOR_LIKE if item == "like_for_like" else (item,)))
        )

    def baseline_refs(self) -> dict[str, BaselineRef]:
        return {name: BaselineRef(ref) if isinstance(ref, str) else ref for name, ref in self.baselines.items()}

    def validate(self, where: str) -> None:
        if (
            not self.name
            or len(self.name) > 100
            or self.name in (".", "..")
            or any(not (ch.isprintable() and ch not in "/\\") for ch in self.name)
        ):
            raise SpecsimError(
                f"{where}.name: expected a name of 1-100 printable characters without '/' or '\\' "
                "(it names the results folder)"
            )
        if self.name in self.baselines:
            raise SpecsimError(
                f"{where}.baselines.{self.name}: a baseline cannot share the main accelerator's "
                "name; rename one of them"
            )
        self._check_modes(where)
        listed = (self.comparison,) if isinstance(self.comparison, str) else tuple(self.comparison)
        if not listed:
            raise SpecsimError(f"{where}.comparison: expected like_for_like or a list of {', '.join(BASES)}")
        if len(set(listed)) != len(listed):
            raise SpecsimError(f"{where}.comparison: a basis is listed twice ({', '.join(listed)})")
        for pair in _EXCLUSIVE:
            if set(pair) <= set(self.bases):
                raise SpecsimError(
                    f"{where}.comparison: {pair[0]} and {pair[1]} both set the same resource; expected one of them"
                )
        if self.reference not in (self.name, *self.baselines, DEFAULT_REFERENCE):  # the default may be absent
            raise SpecsimError(
                f"{where}.reference: {shown(self.reference, 60)} is neither this accelerator "
                f"({self.name}) nor a baseline ({cut(', '.join(self.baselines), 200) or 'none'}); "
                "name one of them"
            )

    def _check_modes(self, where: str) -> None:
        """Every level mode and the attention mode is a PE mode of this hardware."""
        modes = self.hardware.modes
        for i, mode in enumerate(self.decoding.level_modes):
            if mode not in modes:
                raise SpecsimError(
                    f"{where}.decoding.level_modes[{i}]: PE mode {mode!r} is not one of the hardware's "
                    f"({', '.join(modes)})"
                )
        self._check_lm_head_modes(where)
        fp16_mode = self.decoding.fp16_mode
        if fp16_mode and fp16_mode not in modes:
            raise SpecsimError(
                f"{where}.decoding.fp16_mode: PE mode {fp16_mode!r} is not one of the hardware's ({', '.join(modes)})"
            )
        if fp16_mode and (modes[fp16_mode].activation_bits != 16 or modes[fp16_mode].weight_bits < 16):
            raise SpecsimError(
                f"{where}.decoding.fp16_mode: PE mode {fp16_mode!r} cannot run FP16 weights x FP16 activations; "
                "expected a mode with activation_bits 16 and weight_bits >= 16"
            )
        if self.decoding.attention_mode not in modes:
            raise SpecsimError(
                f"{where}.decoding.attention_mode: PE mode {self.decoding.attention_mode!r} is not one "
                f"of the hardware's ({', '.join(modes)})"
            )

    def _check_lm_head_modes(self, where: str) -> None:
        """A non-FP16 lm_head's PE mode exists, takes FP16 activations (the hidden state entering lm_head) and
        has lanes at least as wide as the format's weight elements."""
        dec, modes = self.decoding, self.hardware.modes
        for level in range(len(dec.level_modes)):
            mode_name, fmt = dec.lm_head_mode(level), dec.lm_head_format(level)
            if mode_name is None:
                continue
            key = f"{where}.decoding.lm_head_modes[{level}]"
            if mode_name not in modes:
                raise SpecsimError(f"{key}: PE mode {mode_name!r} is not one of the hardware's ({', '.join(modes)})")
            mode, bits = self.hardware.mode(mode_name), element_bits(fmt)
            if mode.activation_bits != 16 or (bits is not None and math.floor(mode.weight_bits) < bits):
                raise SpecsimError(
                    f"{key}: PE mode {mode_name!r} ({mode.weight_bits:g}-bit weights x {mode.activation_bits:g}-bit "
                    f"activations) cannot run a {fmt!r} lm_head ({bits or '?'}-bit weights x FP16 activations); "
                    "give a mode with activation_bits 16 and weight_bits >= the format's"
                )

    @property
    def trace_role(self) -> str:
        return self.decoding.trace or self.name

    def resolve(self, relative: str) -> Path:
        """A path written in this file (relative to its folder), as :func:`specsim.paths.display_path` shows it."""
        return beside(self.path, relative)


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
        raise SpecsimError(
            f"{path}: hardware: missing key (a shipped hardware name, a path, or a mapping "
            "with 'include' and overrides)"
        )
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


def load_run_config(
    path: str | Path, overrides: list[str] = (), values: list[tuple[str, Any]] = (), label: str = "--set"
) -> RunConfig:
    """Load and validate a run config; ``overrides`` are ``key.path=value`` strings (``--set``),
    ``values`` (key, value) pairs already parsed (a sweep point; errors name them with ``label``)."""
    path = Path(path)
    data = _raw_config(path)
    for assignment in overrides:
        override(data, RunConfig, assignment, path)
    for key, value in values:
        set_key(data, RunConfig, key, copy.deepcopy(value), path, label)
    cfg = build(RunConfig, data, path)
    energy_table_for(cfg.hardware)  # every mode priced, table readable
    return cfg


def _basis_raw(main: RunConfig, raw_hw: dict, base_energy: EnergyTable, main_energy: EnergyTable) -> dict:
    """The baseline's raw hardware mapping with the main accelerator's shared resources written in."""
    hw = copy.deepcopy(raw_hw)
    m = main.hardware
    for basis in main.bases:
        if basis == "same_pe_count":  # the array, with its preload path
            hw["array"] = {
                **hw.get("array", {}),
                "rows": m.array.rows,
                "cols": m.array.cols,
                "preload_bits_per_column": m.array.preload_bits_per_column,
            }
        elif basis == "same_area":
            scale = math.sqrt(main_energy.pe_area.value / base_energy.pe_area.value)
            hw["array"] = {
                **hw.get("array", {}),
                "rows": max(1, round(m.array.rows * scale)),
                "cols": max(1, round(m.array.cols * scale)),
                "preload_bits_per_column": m.array.preload_bits_per_column,
            }
        elif basis == "same_clock":
            hw["clock_ghz"] = m.clock_ghz
        elif basis == "same_memory":
            hw["dram"] = {**hw.get("dram", {}), **{k: getattr(m.dram, k) for k in SHARED_DRAM_KEYS}}
        elif basis == "same_bandwidth":
            hw["dram"] = {**hw.get("dram", {}), "bandwidth_gbps": m.dram.bandwidth_gbps}
        else:  # same_buffers
            hw["buffers"] = {b: dict(vars(m.buffers.get(b))) for b in BUFFER_NAMES}
    return hw


def _flatten(mapping: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mapping -> (dotted key, value) pairs; a value that is a list or a scalar ends a key."""
    out = []
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        out += _flatten(value, dotted + ".") if isinstance(value, dict) and value else [(dotted, value)]
    return out


def load_baseline(main: RunConfig, name: str, ref: BaselineRef, main_energy: EnergyTable) -> RunConfig:
    """A baseline's run config with the comparison basis, then its overrides, applied; validated once."""
    p = main.resolve(ref.config)
    if not p.exists():
        raise SpecsimError(f"{main.path}: baselines.{name}: no such run-config file {p}")
    data = _raw_config(p)
    raw_energy = data["hardware"].get("energy_table", "default-28nm")
    base_energy = (
        load_energy_table(raw_energy, Path(data["hardware"]["path"]).parent)
        if "same_area" in main.bases
        else main_energy
    )
    data["hardware"] = _basis_raw(main, data["hardware"], base_energy, main_energy)
    data["decoding"] = {**(data.get("decoding") or {}), "batch": main.decoding.batch}  # equal batch
    label = f"{main.path}: baselines.{name}.overrides"
    for key, value in _flatten(ref.overrides):
        set_key(data, RunConfig, key, copy.deepcopy(value), p, label)
    cfg = build(RunConfig, data, p)
    return replace(cfg, name=name)


def accelerators(cfg: RunConfig, cache: dict | None = None) -> list[Accelerator]:
    """The main accelerator first, then each baseline with the comparison basis applied.

    ``cache`` (any dict kept by the caller, e.g. across the points of a sweep) memoizes the baselines
    by file (modification time and size), the main hardware they share resources with, the batch, and
    overrides.
    """
    main_energy = energy_table_for(cfg.hardware)
    out = [Accelerator(cfg.name, cfg, cfg.hardware, main_energy)]
    for name, ref in cfg.baseline_refs().items():
        p = cfg.resolve(ref.config)
        key = (
            "baseline",
            name,
            file_key(p),
            cfg.bases,
            repr(cfg.hardware),
            cfg.decoding.batch,  # every baseline takes the main accelerator's batch
            repr(ref.overrides),
        )
        if cache is not None and key in cache:
            base = cache[key]
        else:
            base = load_baseline(cfg, name, ref, main_energy)
            if cache is not None:
                cache[key] = base
        out.append(Accelerator(name, base, base.hardware, energy_table_for(base.hardware)))
    return out


#: hardware fields that make accelerators different designs, not shared resources (never compared)
DESIGN_FIELDS = ("name", "path", "source", "modes", "energy_table")


def _fields(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf field of a hardware config by dotted name (the design fields left out)."""
    import dataclasses

    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.name in DESIGN_FIELDS:
            continue
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        out.update(_fields(value, key + ".") if dataclasses.is_dataclass(value) else {key: value})
    return out


def differences(main: Accelerator, other: Accelerator) -> list[str]:
    """Every shared resource (array, clock, memory, buffers, vector unit: every hardware field but the
    PE modes and the energy table) and the batch in which ``other`` differs from ``main``; empty: like
    for like."""
    ours, theirs = _fields(main.hardware), _fields(other.hardware)
    ours["decoding.batch"], theirs["decoding.batch"] = main.config.decoding.batch, other.config.decoding.batch
    return [
        f"{key} {_value(theirs[key])} ({main.name}: {_value(ours[key])})"
        for key in ours
        if ours[key] != theirs.get(key)
    ]


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
