"""Decoding replay: every forward pass of a generation (from a trace) through the engine.

For a trace of an accelerator's decoding (speculative rounds or plain autoregressive steps), all
passes of all prompts become one operator table (prefill, then per round gamma draft passes in the
draft level's PE mode and one verify pass of gamma+1 tokens in the target's; KV-cache reads over the
cached length of each level and write-backs of the new K/V entries; entries of rejected tokens are
simply overwritten by the next pass, as the trace's cached lengths say) and is replayed in one call,
so the DMA can prefetch the next pass's weights across pass boundaries and mode switches are charged
where the mode changes.

Shape-only workloads get a trace from :func:`specsim.trace.schedule.shape_trace` (numpy only).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np

from specsim.engine import SimResult, simulate
from specsim.errors import SpecsimError
from specsim.hardware.energy import energy_breakdown, group_breakdown, op_energy_pj, static_mw_total
from specsim.hardware.lowering import batched_steps_table, level_templates, per_sequence_rows
from specsim.hardware.mapping import UNIT_VECTOR
from specsim.methods.base import is_tree_draft
from specsim.paths import beside
from specsim.results.capacity import Residency, check_capacity, residency
from specsim.results.config import Accelerator, ShapeWorkload
from specsim.results.serving_costs import AUTO_GAMMAS, PassCosts, best_gamma
from specsim.trace.architectures import load_architecture, shipped_architectures
from specsim.trace.batching import BatchSchedule, batch_schedule
from specsim.trace.format_bits import bsfp_layout, bsfp_metadata_bits
from specsim.trace.schedule import AcceptanceProfile, check_operator_rows, shape_trace
from specsim.trace.tracefile import PHASES, Trace, lm_head_formats, read_trace, summarize

PREFILL = PHASES.index("prefill")


@dataclass
class PerPrompt:
    """Per-sequence totals of a replay (arrays of one entry per prompt): the sampling unit of the report's
    confidence intervals. Cycles at the accelerator's clock; energy in pJ."""

    cycles: np.ndarray  #: all passes of the sequence (prefill included)
    prefill_cycles: np.ndarray  #: its prefill passes (every level's)
    decode_tokens: np.ndarray  #: tokens its decode phase yields (generated - 1; expected acceptance: rounds x E[tau])
    tokens: np.ndarray  #: tokens generated (the first one comes from the prefill)
    energy_pj: np.ndarray  #: dynamic energy of its operators + static power over its cycles

    @property
    def decode_cycles(self) -> np.ndarray:
        return self.cycles - self.prefill_cycles


@dataclass(frozen=True)
class PassStats:
    """One kind of forward pass of a replay (one chain level in one phase) and its mean cost per pass.
    Cycles at the accelerator's clock; MACs on the PE array (vector-unit work left out); DRAM bytes read
    plus written."""

    level: int  #: chain level (0: the target model, 1: its first draft, ...)
    phase: str  #: one of :data:`~specsim.trace.tracefile.PHASES` ("prefill", "draft", ...)
    count: int  #: passes of this kind
    mean_cycles: float  #: cycles per pass (from the end of the pass before to the end of this one)
    mean_macs: float  #: PE-array MACs per pass
    mean_dram_bytes: float  #: DRAM bytes (read + write) per pass
    mean_peak_cycles: float  #: cycles the pass's array MACs take at the peak of their PE modes
    mean_tokens: float = 0.0  #: tokens per pass (M of its weight GEMMs; summed over a batch's sequences)


def pass_stats(levels: np.ndarray, phases: np.ndarray, per_pass: dict[str, np.ndarray]) -> tuple[PassStats, ...]:
    """One :class:`PassStats` per (level, phase index) present, in that order; ``per_pass`` holds one value
    per pass for ``cycles``, ``macs``, ``dram_bytes`` and ``peak_cycles``."""
    kind = levels.astype(np.int64) * len(PHASES) + phases
    out = []
    for k, count in zip(*np.unique(kind, return_counts=True)):
        mask = kind == k
        mean = {name: float(v[mask].mean()) for name, v in per_pass.items()}
        out.append(
            PassStats(
                int(k) // len(PHASES),
                PHASES[int(k) % len(PHASES)],
                int(count),
                mean["cycles"],
                mean["macs"],
                mean["dram_bytes"],
                mean["peak_cycles"],
                mean.get("tokens", 0.0),
            )
        )
    return tuple(out)


@dataclass
class Replay:
    """One accelerator x workload replay. Cycles at the accelerator's clock; energy in pJ."""

    accelerator: str
    workload: str
    source: str  #: "trace" or "shape"
    note: str  #: the SHAPE-DERIVED note, or the trace path
    clock_ghz: float
    prompts: int
    tokens: int  #: tokens generated
    total_cycles: int
    prefill_cycles: int
    bound_cycles: int  #: roofline lower bound of the run (SimResult.lower_bound_cycles)
    energy_pj: dict[str, float]
    stalls: dict[str, int]
    mode_switches: int
    passes: tuple[PassStats, ...]  #: one record per kind of pass, by level then phase
    alpha: float | None = None
    mean_tokens_per_round: float | None = None
    gamma: int | None = None
    drift: dict | None = None
    residency: Residency | None = None  #: bytes resident in DRAM (weights, embeddings, KV cache, activations)
    per_prompt: PerPrompt | None = None
    acceptance_mode: str | None = None  #: shape workloads: "sampled" or "expected"
    configured_alpha: float | None = None  #: shape workloads: the alpha the configured acceptance profile yields
    expected_tokens_per_round: float | None = None
    gamma_auto: bool = False  #: decoding.gamma auto: a draft length per round (``gamma`` is then None)
    mean_gamma: float | None = None  #: draft tokens per round, averaged over the target's rounds
    tree_levels: tuple[int, ...] = ()  #: draft levels that expand a token tree (the trace header's ``trees``)
    tree_nodes: float | None = None  #: mean nodes per round of the deepest tree level
    batch: int = 1  #: decoding.batch: sequences decoded together
    max_batch: int = 1  #: the most sequences any pass held (below ``batch`` when the workload has fewer)

    @property
    def seconds(self) -> float:
        return self.total_cycles / (self.clock_ghz * 1e9)

    @property
    def metrics(self) -> dict:
        """The per-accelerator metrics of the report (seconds, joules). Latencies are per sequence: a
        sequence spends every cycle of each pass it is in (with batch 1, the run's cycles split by
        sequence); throughput and energy are over the whole run."""
        s = 1.0 / (self.clock_ghz * 1e9)
        pp = self.per_prompt
        sequence_cycles = float(pp.cycles.sum()) if pp else self.total_cycles
        prefill = float(pp.prefill_cycles.sum()) if pp else self.prefill_cycles
        decode_tokens = float(pp.decode_tokens.sum()) if pp else self.tokens - self.prompts
        energy_j = sum(self.energy_pj.values()) * 1e-12
        groups = {k: pj * 1e-12 for k, pj in group_breakdown(self.energy_pj).items()}
        return {
            "batch": self.batch,
            "max_batch": self.max_batch,
            "latency_s": sequence_cycles / (self.clock_ghz * 1e9) / self.prompts,
            "prefill_latency_s": prefill * s / self.prompts,
            # the 1st token comes from prefill
            "decode_latency_per_token_s": (sequence_cycles - prefill) * s / max(decode_tokens, 1),
            "total_time_s": self.seconds,
            "tokens": self.tokens,
            "tokens_per_s": self.tokens / self.seconds if self.total_cycles else 0.0,
            "energy_j_per_token": energy_j / max(self.tokens, 1),
            "energy_breakdown_j": {k: v / max(self.tokens, 1) for k, v in groups.items()},
            "roofline_efficiency": self.bound_cycles / self.total_cycles if self.total_cycles else 0.0,
            "mode_switches": self.mode_switches,
            "stall_cycles": self.stalls,
            "steps": self.phase_steps(),
            "resident_bytes": {**vars(self.residency), "total": self.residency.total} if self.residency else None,
        }

    def pass_stats(self, level: int, phase: str) -> PassStats | None:
        """The record of ``level``'s passes in ``phase``, or None when the replay has none."""
        return next((p for p in self.passes if (p.level, p.phase) == (level, phase)), None)

    def phase_steps(self) -> dict[str, dict[str, float]]:
        """Mean draft, verify and decode pass (draft passes pooled over chain levels) for the roofline:
        seconds, MACs, DRAM bytes and the pass's peak MACs/s (its mix of PE modes at full utilization)."""
        out = {}
        for phase in ("draft", "verify", "decode"):
            kinds = [p for p in self.passes if p.phase == phase]
            n = sum(p.count for p in kinds)
            if not n:
                continue
            mean = {
                name: sum(getattr(p, f"mean_{name}") * p.count for p in kinds) / n
                for name in ("cycles", "macs", "dram_bytes", "peak_cycles")
            }
            hz = self.clock_ghz * 1e9
            out[phase] = {
                "passes": n,
                "seconds": mean["cycles"] / hz,
                "macs": mean["macs"],
                "dram_bytes": mean["dram_bytes"],
                "peak_macs_per_s": mean["macs"] / mean["peak_cycles"] * hz if mean["peak_cycles"] else 0.0,
            }
        return out


def workload_seed(shape: ShapeWorkload, workload: str) -> list[int]:
    """The seed stream of one workload: its base seed and a hash of its name, so workloads never share a
    sample (every accelerator of the workload draws from the same stream: common random numbers)."""
    return [shape.seed, zlib.crc32(workload.encode())]


def shape_trace_for(
    acc: Accelerator, shape: ShapeWorkload, config_path: str, read=read_trace, workload: str = ""
) -> Trace:
    """A SHAPE-DERIVED trace of ``acc``'s decoding on an architecture file (no model is run);
    ``read`` loads an acceptance trace (default :func:`read_trace`); ``workload`` names the seed stream."""
    dec = acc.config.decoding
    shape = replace(shape, prompts=max(shape.prompts, dec.batch))  # a full batch: B sampled sequences at least
    if dec.kind != "speculative":
        return shape_workload_trace(shape, None, 1, None, dec.formats[0], workload)
    if is_tree_draft(dec.draft):
        raise SpecsimError(
            f"{config_path}: workloads: shape workload {shape.architecture!r}: accelerator {acc.name!r} drafts a "
            f"token tree ({dec.draft}); shape workloads schedule chains of gamma tokens only, replay a real "
            "tree trace instead"
        )
    source = shape.acceptance.get(acc.config.trace_role)
    if source is None:
        raise SpecsimError(
            f"{config_path}: workloads: shape workload {shape.architecture!r}: shape.acceptance."
            f"{acc.config.trace_role}: missing key (an alpha or a trace path for accelerator "
            f"{acc.name!r})"
        )
    if not isinstance(source, float):
        source = read(beside(config_path, source))
        where = (
            f"{config_path}: workloads: shape workload {shape.architecture!r}: shape.acceptance."
            f"{acc.config.trace_role}: trace {source.path}"
        )
        _check_verify(source, dec.verify, where)
        if source.header.get("draft") != dec.draft:
            raise SpecsimError(
                f"{where} drafts with {source.header.get('draft')!r}, the accelerator with "
                f"{dec.draft!r}: its acceptance would not be this draft's"
            )
        head = lm_head_formats(source.header)[1]
        if not head.startswith(dec.lm_head_format(1)):
            raise SpecsimError(
                f"{where} drafts with a {head!r} lm_head, the accelerator with {dec.lm_head_format(1)!r} "
                "(decoding.lm_head_formats): its acceptance would not be this draft's"
            )
    head = dec.lm_head_format(1)
    if dec.gamma == "auto":
        chooser = (dec.batch, _gamma_chooser(acc, shape, source, workload))
        return shape_workload_trace(
            shape, dec.formats[1], AUTO_GAMMAS, source, dec.formats[0], workload, chooser, draft_lm_head=head
        )
    return shape_workload_trace(shape, dec.formats[1], dec.gamma, source, dec.formats[0], workload, draft_lm_head=head)


def _gamma_chooser(acc: Accelerator, shape: ShapeWorkload, source: float | Trace, workload: str):
    """``decoding.gamma: auto``: per round, :func:`~specsim.results.serving_costs.best_gamma` from the
    accelerator's memoised engine pass costs (level templates of a one-token trace of the same
    architecture) and the acceptance profile."""
    dec = acc.config.decoding
    probe = shape_workload_trace(
        replace(shape, prompts=1, max_new_tokens=2),
        dec.formats[1],
        1,
        source,
        dec.formats[0],
        draft_lm_head=dec.lm_head_format(1),
    )
    costs = PassCosts(acc, prepare(acc, probe, workload).templates)
    profile = AcceptanceProfile.of(source, AUTO_GAMMAS)
    return lambda sequences, mean_past: best_gamma(
        lambda g: float(profile.survival[: g + 1].sum()), costs, sequences, mean_past
    )


def shape_workload_trace(
    shape: ShapeWorkload,
    draft_format: str | None,
    gamma: int,
    acceptance: float | Trace | None,
    target_format: str = "fp16",
    workload: str = "",
    auto_gamma: tuple | None = None,
    draft_lm_head: str = "fp16",
) -> Trace:
    """The one builder of SHAPE-DERIVED traces (``specsim run`` workloads and ``specsim trace --shape``):
    ``shape``'s architecture, prompts and lengths, ``draft_format`` drafts (None: plain decoding) with
    ``gamma`` and acceptance from an alpha or a speculative trace, the seed stream of ``workload``;
    ``auto_gamma`` ``(batch, choose)``: a draft length per round (:func:`~specsim.trace.schedule.shape_trace`);
    ``draft_lm_head``: the draft level's lm_head format."""
    arch = load_architecture(shape.architecture)
    profile = None if draft_format is None else AcceptanceProfile.of(acceptance, gamma)
    header, arrays = shape_trace(
        arch,
        draft_format,
        gamma,
        profile,
        [shape.prompt_len] * shape.prompts,
        shape.max_new_tokens,
        workload_seed(shape, workload),
        target_format=target_format,
        acceptance=shape.acceptance_mode,
        auto_gamma=auto_gamma,
        draft_lm_head=draft_lm_head,
    )
    return Trace(f"shape:{arch.name}", header, arrays)


def _architecture(trace: Trace) -> dict | None:
    """The architecture numbers of a trace's model: the header's (shape traces) or a shipped file's."""
    arch = trace.header.get("architecture")
    if isinstance(arch, dict):
        return arch
    model = str(trace.header.get("model", ""))
    return dict(vars(load_architecture(model))) if model in shipped_architectures() else None


def _kv_heads(trace: Trace) -> int | None:
    arch = _architecture(trace)
    return int(arch["kv_heads"]) if arch else None


def _untied_embedding_weights(trace: Trace) -> int:
    """Weights of an input embedding stored apart from lm_head (0 when tied or unknown)."""
    arch = _architecture(trace)
    return 0 if not arch or arch.get("tied_embeddings", True) else int(arch["vocab"]) * int(arch["hidden"])


@dataclass
class Prepared:
    """What a replay needs besides the engine: each level's hardware operators and the DRAM residency."""

    templates: list
    residency: Residency
    schedule: BatchSchedule  #: the trace's passes batched by decoding.batch


def prepare(acc: Accelerator, trace: Trace, workload: str) -> Prepared:
    """Check ``trace`` against ``acc``, build its level templates and check that it fits ``acc``'s DRAM."""
    check_trace(acc, trace, workload)
    dec = acc.config.decoding
    modes = tuple(acc.hardware.modes)
    templates = level_templates(
        trace,
        dec.level_modes,
        modes,
        attention_mode=dec.attention_mode,
        lower=dec.lowering(),
        kv_streams=_kv_heads(trace),
        lm_head_modes=[dec.lm_head_mode(level) for level in range(len(dec.level_modes))],
        fp16_mode=dec.fp16_mode or None,
    )
    where = f"{acc.config.path}: workload {workload!r} on accelerator {acc.name!r}"
    try:
        schedule = batch_schedule(trace, dec.batch)
    except SpecsimError as e:
        raise SpecsimError(f"{where}: decoding.batch {dec.batch}: {e}") from None
    check_operator_rows(_table_rows(templates, schedule), where)
    resident = residency(
        acc.hardware,
        templates,
        modes,
        schedule.pass_level,
        schedule.pass_tokens,
        schedule.pass_context,
        _untied_embedding_weights(trace),
        schedule.pass_window_context,
    )
    check_capacity(where, acc.hardware, resident)
    return Prepared(templates, resident, schedule)


def _table_rows(templates: list, schedule: BatchSchedule) -> int:
    """Operators the replay's table will hold: per batched pass, its level's shared rows once and its
    per-sequence rows once per attention group (one per member, more for a token-tree pass)."""
    per_seq = np.array([int(per_sequence_rows(t.columns).sum()) for t in templates], dtype=np.int64)
    shared = np.array([len(t) for t in templates], dtype=np.int64) - per_seq
    groups = np.bincount(schedule.member_pass[schedule.group_member], minlength=schedule.passes)
    return int((shared[schedule.pass_level] + per_seq[schedule.pass_level] * groups).sum())


def _bsfp_modes(acc: Accelerator, trace: Trace) -> list[tuple[str, str, str, int]]:
    """(layout, PE mode, config key, value bits) of every GEMM group that reads BSFP-encoded weights: a level's
    draft linears and a BSFP draft lm_head in their mode (4-bit top nibble), and, when the trace drafts
    with BSFP, the FP16-valued GEMMs in ``decoding.fp16_mode`` (the 16-bit words, with every layout's
    metadata)."""
    dec = acc.config.decoding
    found = []
    for level, fmt in enumerate(trace.header["level_formats"]):
        if (layout := bsfp_layout(fmt)) is not None:
            found.append((layout, dec.level_modes[level], f"decoding.level_modes[{level}]", 4))
    for level, fmt in enumerate(lm_head_formats(trace.header)):
        if (layout := bsfp_layout(fmt)) is not None:
            found.append((layout, dec.lm_head_mode(level) or "", f"the mode of lm_head level {level}", 4))
    if dec.fp16_mode:
        found += [(layout, dec.fp16_mode, "decoding.fp16_mode", 16) for layout in sorted({f[0] for f in found})]
    return found


def _check_bsfp_pricing(acc: Accelerator, trace: Trace, where: str) -> None:
    """A PE mode that reads BSFP weights is priced at the value bits plus the trace's layout's per-block
    metadata (hardware ``weight_bits``); a mode priced for another layout is refused, not mis-priced, and
    one mode cannot price two layouts."""
    modes = acc.config.hardware.modes
    layouts_of: dict[str, set[str]] = {}
    for layout, mode_name, key, value_bits in _bsfp_modes(acc, trace):
        meta = bsfp_metadata_bits(layout)
        if meta is None:
            raise SpecsimError(f"{where} names BSFP layout {layout!r}, which this specsim does not know")
        layouts_of.setdefault(mode_name, set()).add(layout)
        if len(layouts_of[mode_name]) > 1:
            raise SpecsimError(
                f"{where} reads BSFP layouts {', '.join(sorted(layouts_of[mode_name]))} in one PE mode "
                f"{mode_name!r} ({key}), which prices one layout; record the trace with one layout"
            )
        mode = modes.get(mode_name)
        if mode is None or abs(mode.weight_bits - value_bits - meta) < 1e-4:
            continue
        raise SpecsimError(
            f"{where} encodes with BSFP layout {layout!r} ({value_bits} + {meta:.6g} metadata bits per weight), "
            f"but PE mode {mode_name!r} ({key}) prices {mode.weight_bits:.6g} bits per weight; set "
            f"hardware.modes.{mode_name}.weight_bits to {value_bits + meta:.6g} or use a trace of the layout it prices"
        )


def check_trace(acc: Accelerator, trace: Trace, workload: str) -> None:
    """The trace must be of the kind of decoding the accelerator is configured for."""
    dec = acc.config.decoding
    mode = trace.header["mode"]
    where = f"{acc.config.path}: workload {workload!r}, accelerator {acc.name!r}: trace {trace.path}"
    if dec.kind == "speculative":
        if mode != "speculative":
            raise SpecsimError(f"{where} is {mode} decoding, expected speculative ({dec.draft})")
        if trace.header.get("source") == "trace" and trace.header["draft"] != dec.draft:
            raise SpecsimError(f"{where} drafts with {trace.header['draft']!r}, the accelerator with {dec.draft!r}")
        _check_verify(trace, dec.verify, where)
    elif mode == "speculative":
        raise SpecsimError(f"{where} is speculative, the accelerator decodes autoregressively")
    for level, (want, have) in enumerate(zip(dec.formats, trace.header["level_formats"])):
        if not have.startswith(want):
            raise SpecsimError(
                f"{where} runs {have!r} weights at level {level}, the accelerator expects {want!r} (decoding.formats)"
            )
    for level, have in enumerate(lm_head_formats(trace.header)):
        if not have.startswith(dec.lm_head_format(level)):
            raise SpecsimError(
                f"{where} runs a {have!r} lm_head at level {level}, the accelerator expects "
                f"{dec.lm_head_format(level)!r} (decoding.lm_head_formats)"
            )
    if len(trace.header["levels"]) > len(dec.level_modes):
        raise SpecsimError(
            f"{where} has {len(trace.header['levels'])} levels, decoding.level_modes gives {len(dec.level_modes)}"
        )
    _check_bsfp_pricing(acc, trace, where)
    if trace["step_level"].size == 0:
        raise SpecsimError(f"{where} has no operand trace (recorded with --no-operands)")
    method = dec.method_plugin
    missing = [s for s in method.needs_layer_stats(dec.method_params) if trace[s].size == 0]
    if missing and trace.header.get("source", "trace") == "trace":
        raise SpecsimError(
            f"{where} has no layer statistics ({', '.join(missing)}; recorded with --no-layer-stats), "
            f"which method {method.name!r} reads; record it with them or set its parameters not to"
        )


def _check_verify(trace: Trace, verify: str, where: str) -> None:
    """A real trace's acceptance events follow its verify mode: it must be the accelerator's ``decoding.verify``."""
    recorded = trace.header.get("verify")
    if (
        trace.header.get("source", "trace") == "trace"
        and trace.header.get("mode") == "speculative"
        and recorded != verify
    ):
        raise SpecsimError(f"{where} was verified {recorded}, the accelerator's decoding.verify is {verify}")


def replay(acc: Accelerator, trace: Trace, workload: str, prepared: Prepared | None = None) -> Replay:
    """Simulate every forward pass of ``trace`` on ``acc``, ``decoding.batch`` sequences at a time
    (``prepared``: :func:`prepare`'s result, if the caller checked the inputs first)."""
    prepared = prepared or prepare(acc, trace, workload)
    hw = acc.hardware
    sched = prepared.schedule
    levels, phases = sched.pass_level, sched.pass_phase
    ops, starts = pass_table(prepared, tuple(hw.modes))
    result = simulate(hw, ops)
    step_end = np.maximum.accumulate(np.maximum.reduceat(result.op_end, starts))
    step_cycles = np.diff(np.concatenate([[0], step_end]))
    m = result.mapping
    array = m.unit != UNIT_VECTOR
    per_pass = {
        "cycles": step_cycles,
        "macs": np.add.reduceat(np.where(array, m.macs, 0), starts),
        "dram_bytes": np.add.reduceat(result.dram_read_bytes + result.dram_write_bytes, starts),
        "peak_cycles": np.add.reduceat(np.where(array, m.macs / m.peak_macs_per_cycle, 0.0), starts),
        "tokens": sched.pass_tokens.astype(float),
    }
    summary = summarize(trace) if trace.header["mode"] == "speculative" else None
    pass_energy_pj = (
        np.add.reduceat(op_energy_pj(result.op_actions(), acc.energy, hw), starts)
        + step_cycles * static_mw_total(acc.energy, hw) * 1e-3 / (hw.clock_ghz * 1e9) * 1e12
    )
    return Replay(
        accelerator=acc.name,
        workload=workload,
        source=trace.header.get("source", "trace"),
        note=trace.header.get("shape_note", f"trace {trace.path}"),
        clock_ghz=hw.clock_ghz,
        prompts=int(trace["prompt_len"].size),
        tokens=int(trace["generated_len"].sum()),
        total_cycles=result.total_cycles,
        prefill_cycles=int(step_cycles[phases == PREFILL].sum()),
        bound_cycles=roofline_bound(result, hw),
        energy_pj=energy_breakdown(result.actions(), acc.energy, hw),
        stalls=result.stalls_by_cause(),
        mode_switches=int(result.mode_switches.sum()),
        passes=pass_stats(levels, phases, per_pass),
        alpha=summary.alpha if summary else None,
        mean_tokens_per_round=summary.mean_tokens_per_round if summary else None,
        gamma=int(trace.header["gamma"][0])
        if trace.header.get("gamma") and not trace.header.get("gamma_auto")
        else None,
        gamma_auto=bool(trace.header.get("gamma_auto")),
        mean_gamma=float(trace["round_drafted"][trace["round_level"] == 0].mean()) if summary else None,
        **_tree_fields(trace),
        drift=trace.header.get("drift"),
        residency=prepared.residency,
        per_prompt=_per_prompt(trace, sched, step_cycles, pass_energy_pj),
        acceptance_mode=trace.header.get("acceptance_mode"),
        configured_alpha=trace.header.get("configured_alpha"),
        expected_tokens_per_round=trace.header.get("expected_tokens_per_round"),
        batch=sched.batch,
        max_batch=int(sched.pass_members.max(initial=1)),
    )


def pass_table(prepared: Prepared, modes: tuple[str, ...]):
    """The operator table of every batched pass of a prepared replay (modes indexing ``modes``), and the
    first row of each pass (:func:`~specsim.hardware.lowering.batched_steps_table`)."""
    s = prepared.schedule
    return batched_steps_table(
        prepared.templates,
        modes,
        s.pass_level,
        s.member_pass,
        s.member_tokens,
        s.member_past,
        s.member_logits,
        s.groups,
    )


def _tree_fields(trace: Trace) -> dict:
    """``tree_levels`` and ``tree_nodes`` of a :class:`Replay` from the trace's token trees (if any)."""
    levels = tuple(sorted(int(k) for k in (trace.header.get("trees") or {})))
    if not levels:
        return {}
    rounds = trace["round_level"] == levels[-1] - 1  # the rounds that verify the deepest tree
    return {"tree_levels": levels, "tree_nodes": float(trace["round_nodes"][rounds].mean()) if rounds.any() else None}


def _per_prompt(trace: Trace, sched: BatchSchedule, pass_cycles: np.ndarray, pass_energy_pj: np.ndarray) -> PerPrompt:
    """Per-sequence totals from per-pass ones: a sequence spends every cycle of each pass it is in, and
    takes the share of a pass's energy that its tokens are of the pass's tokens."""
    n = int(trace["prompt_len"].size)
    seq, pass_of = sched.member_prompt, sched.member_pass
    tokens = trace["generated_len"].astype(np.int64)
    decode_tokens = (tokens - 1).astype(float)
    if trace.header.get("expected_decode_tokens") is not None:  # expected mode, a draft length per round
        decode_tokens = np.asarray(trace.header["expected_decode_tokens"], dtype=float)
    elif trace.header.get("acceptance_mode") == "expected":  # each round yields the expected tokens per round
        top = trace["round_level"] == 0
        rounds = np.bincount(trace["round_prompt"][top].astype(np.int64), minlength=n)
        decode_tokens = rounds * float(trace.header["expected_tokens_per_round"])
    prefill = sched.pass_phase[pass_of] == PREFILL
    share = sched.member_tokens / sched.pass_tokens[pass_of]
    return PerPrompt(
        cycles=np.bincount(seq, weights=pass_cycles[pass_of], minlength=n),
        prefill_cycles=np.bincount(seq, weights=np.where(prefill, pass_cycles[pass_of], 0), minlength=n),
        decode_tokens=decode_tokens,
        tokens=tokens,
        energy_pj=np.bincount(seq, weights=pass_energy_pj[pass_of] * share, minlength=n),
    )


def roofline_bound(result: SimResult, hw) -> int:
    """A true lower bound of the replay's cycles (:meth:`SimResult.lower_bound_cycles`: the DRAM and
    compute roofs with the order operators run in and what the buffers can prefetch), so roofline
    efficiency = bound / simulated cycles is in (0, 1]."""
    return int(math.floor(result.lower_bound_cycles(hw)))
