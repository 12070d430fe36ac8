"""The report of ``specsim run``: per workload and accelerator metrics, speedups, Leviathan's theory.

Speedup of the main accelerator over a baseline = the baseline's decode time per generated token /
the main one's (the decode phase is what speculative decoding speeds up; per token because drift
baselines may stop at other lengths than the lossless ones); ``speedup_end_to_end`` includes the
prefill (and a speculative accelerator's draft prefill). Energy efficiency = the baseline's energy per
generated token / the main one's, end to end. Geometric means run over workloads. Every accelerator's
decode speedup and energy per token are also given relative to the reference accelerator (the run config's
``reference``, fp16 by default; the report records its name under ``reference``).

On the terminal (:func:`print_report`) each workload gets a time and energy table and a speedup table that
fit 100 columns (``wide``: one table with every column), a caption saying what the ratios mean, and a
reading of the figures (:func:`reading`) that uses the report's own numbers only. Each accelerator is
named with its precision (:func:`precision`). ``report["provenance"]`` (:mod:`specsim.results.provenance`)
records the specsim version, the ``--set`` overrides and the SHA-256 of every input file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from specsim.results.config import DEFAULT_REFERENCE, Accelerator
from specsim.results.decoding import Replay
from specsim.results.stats import Estimate, geomean, ratio_of_ratios

DRIFT_KEYS = ("token_agreement", "matching_prefix_mean", "teacher_forced_agreement", "perplexity", "perplexity_fp16")


def leviathan_speedup(alpha: float, gamma: int, c: float) -> float:
    """Leviathan et al.'s walltime speedup (1 - a^(g+1)) / ((1 - a)(g c + 1)); a = 1 taken as the limit."""
    return iid_tokens_per_round(alpha, gamma) / (gamma * c + 1)


def theory(main: Replay, ref: Replay | None) -> dict | None:
    """Theoretical speedup from the measured alpha and cost ratio beside the simulated one, and the
    step costs that explain the gap (all step costs relative to one decode pass of the reference
    accelerator ``ref``, an autoregressive one: FP16 by default)."""
    ref_decode = ref.pass_stats(0, "decode") if ref is not None else None
    draft = main.pass_stats(1, "draft")
    if main.alpha is None or ref_decode is None or draft is None or main.gamma_auto or main.tree_levels:
        return None  # (Leviathan's formula has one chain of one draft length: not gamma auto, not trees)
    verify = main.pass_stats(0, "verify")
    t_ref = ref_decode.mean_cycles / ref.clock_ghz
    c = draft.mean_cycles / main.clock_ghz / t_ref
    v = (verify.mean_cycles if verify else 0.0) / main.clock_ghz / t_ref
    rounds = verify.count if verify else 0
    drafts_per_round = draft.count / rounds if rounds else float(main.gamma or 0)
    expected = main.acceptance_mode == "expected"
    tau = (main.expected_tokens_per_round if expected else main.mean_tokens_per_round) or 1.0
    main_decode = main.metrics["decode_latency_per_token_s"]
    ref_decode_s = ref.metrics["decode_latency_per_token_s"]
    gamma = main.gamma or 0
    configured = main.expected_tokens_per_round
    return {
        "alpha": main.alpha,
        "configured_alpha": main.configured_alpha,
        "gamma": gamma,
        "cost_ratio_c": c,
        "leviathan_speedup": leviathan_speedup(main.alpha, gamma, c),
        "configured_speedup": configured / (gamma * c + 1) if configured else None,
        "tokens_per_round": tau,
        "draft_passes_per_round": drafts_per_round,
        "verify_cost_ratio": v,
        "step_cost_speedup": tau / (drafts_per_round * c + v),
        "simulated_decode_speedup": ref_decode_s / main_decode,
        "explanation": "leviathan_speedup assumes i.i.d. acceptance at the realised alpha, gamma drafts per round "
        "and a verify pass costing one FP16 decode pass; configured_speedup is the same with the "
        "configured acceptance's expected tokens per round (shape workloads); "
        "step_cost_speedup uses the tokens per round of the replay (expected acceptance: the "
        "expectation), "
        "draft passes per round and verify cost (v); simulated_decode_speedup adds what the "
        "step means leave out (mode switches, rounds cut short at the token limit, prefetch across "
        "passes).",
    }


def _per_token(r: Replay, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(cost, tokens) per sequence: decode seconds / decode tokens, all seconds / tokens, or pJ / tokens."""
    pp = r.per_prompt
    hz = r.clock_ghz * 1e9
    if kind == "decode":
        return pp.decode_cycles / hz, pp.decode_tokens
    if kind == "end_to_end":
        return pp.cycles / hz, pp.tokens
    return pp.energy_pj, pp.tokens


def compare(base: Replay, main: Replay, kind: str, level: float) -> Estimate:
    """``main``'s advantage over ``base`` (> 1: main better) in decode time per token (``decode``), time
    per token end to end (``end_to_end``) or energy per token (``energy``), with its confidence interval
    over the sequences both decoded (:func:`specsim.results.stats.ratio_of_ratios`)."""
    b, bt = _per_token(base, kind)
    m, mt = _per_token(main, kind)
    if len(b) != len(m):  # not paired: the point estimate alone
        return Estimate(float((b.sum() / bt.sum()) / (m.sum() / mt.sum())), n=min(len(b), len(m)))
    return ratio_of_ratios(b, np.maximum(bt, 1e-300), m, np.maximum(mt, 1e-300), level)


COMPARISONS = {"speedup": "decode", "speedup_end_to_end": "end_to_end", "energy_efficiency": "energy"}


@dataclass(frozen=True)
class HardwareSummary:
    """What the report records of one accelerator (``report["hardware"][name]``, these keys in this order):
    its files, PE array, clock in GHz, DRAM (bandwidth in GB/s, capacity in GiB) and its decoding."""

    hardware: str  #: its hardware file
    rows: int  #: PE-array rows
    cols: int  #: PE-array columns
    dataflow: str  #: "ws", "os" or "is"
    clock_ghz: float  #: GHz
    dram_gbps: float  #: DRAM bandwidth, GB/s
    dram: str  #: "<stacks> x <preset>"
    capacity_gib: float  #: DRAM capacity, GiB
    energy_table: str  #: its energy-table file
    decoding: str  #: "speculative" or "autoregressive"
    draft: str  #: its draft scheme ("none" for autoregressive decoding)
    method: str = "fp16"  #: its accelerator method (specsim.methods)
    lossless: bool = True  #: its output equals FP16 greedy decoding (the method's claim)
    precision: str = ""  #: "W4A4", "W16A16 + MXFP4 draft": :func:`precision` of its decoding

    @property
    def pes(self) -> int:
        """PEs in the array."""
        return self.rows * self.cols

    @classmethod
    def of(cls, acc: Accelerator) -> HardwareSummary:
        """The record of ``acc`` (its hardware after the comparison basis)."""
        hw = acc.hardware
        return cls(
            hardware=hw.path,
            rows=hw.array.rows,
            cols=hw.array.cols,
            dataflow=hw.array.dataflow,
            clock_ghz=hw.clock_ghz,
            dram_gbps=hw.dram.bandwidth_gbps,
            dram=f"{hw.dram.stacks} x {hw.dram.preset}",
            capacity_gib=hw.dram.capacity_gib,
            energy_table=acc.energy.path,
            decoding=acc.config.decoding.kind,
            draft=acc.config.decoding.draft,
            method=acc.config.decoding.method,
            lossless=acc.config.decoding.method_plugin.lossless,
            precision=precision(acc.config.decoding, hw.modes),
        )


def precision(decoding, modes: dict) -> str:
    """The bit widths an accelerator decodes with, from its decoding config and its hardware's PE modes.

    The target: ``W<w>A<a>``, the weight and activation bits of the PE mode of level 0 (stored bits per
    weight rounded down, so a group scale's overhead drops out: ``W4A16`` for INT4 with a scale per 128).
    Speculative decoding adds ``+ <drafts> draft``: each draft level's weight format family (the letters
    its ``decoding.formats`` name starts with) and its PE mode's weight bits, e.g. ``MXFP4``, ``BSFP4``; a
    level without a format takes the label of an earlier level in the same PE mode, else ``W<w>A<a>``.
    """

    def bits(mode: str) -> str:
        m = modes[mode]
        return f"W{math.floor(m.weight_bits)}A{math.floor(m.activation_bits)}"

    target = bits(decoding.level_modes[0])
    if decoding.kind != "speculative":
        return target
    by_mode: dict[str, str] = {}
    drafts: list[str] = []
    for level, mode in enumerate(decoding.level_modes[1:], start=1):
        family = re.match(r"[a-z]+", decoding.formats[level].lower()) if level < len(decoding.formats) else None
        label = (
            f"{family.group().upper()}{math.floor(modes[mode].weight_bits)}"
            if family
            else by_mode.get(mode, bits(mode))
        )
        by_mode.setdefault(mode, label)
        if label not in drafts:
            drafts.append(label)
    return f"{target} + {'/'.join(drafts)} draft"


def build_report(
    config_name: str,
    config_path: str,
    main: str,
    comparison: str,
    hardware: dict[str, HardwareSummary],
    replays: dict[str, dict[str, Replay]],
    confidence: float = 0.95,
    differences: dict[str, list[str]] | None = None,
    notes: list[str] | None = None,
    reference: str = DEFAULT_REFERENCE,
) -> dict:
    """The report object (``report.json``; ``specsim run --json`` prints it). Every speedup and energy
    efficiency carries its ``confidence`` interval (``*_ci``: [low, high], null with one sequence).
    ``reference``: the accelerator ``vs_reference`` and the theory are relative to (none when absent)."""
    workloads, estimates = [], {key: {} for key in COMPARISONS}
    for wname, by_acc in replays.items():
        m = by_acc[main]
        baselines = [a for a in by_acc if a != main]
        entry = {
            "name": wname,
            "source": m.source,
            "note": m.note,
            "sequences": m.prompts,
            "acceptance_mode": m.acceptance_mode,
            "accelerators": {a: r.metrics for a, r in by_acc.items()},
        }
        for key, kind in COMPARISONS.items():
            est = {b: compare(by_acc[b], m, kind, confidence) for b in baselines}
            for b, e in est.items():
                estimates[key].setdefault(b, []).append(e)
            entry[key] = {b: e.value for b, e in est.items()}
            entry[f"{key}_ci"] = {b: _ci(e) for b, e in est.items()}
        ref = by_acc.get(reference)
        entry["vs_reference"] = {a: _vs_reference(ref, r, confidence) for a, r in by_acc.items()} if ref else {}
        entry["acceptance"] = {
            a: {
                "alpha": r.alpha,
                "configured_alpha": r.configured_alpha,
                "tokens_per_round": r.mean_tokens_per_round,
                "expected_tokens_per_round": r.expected_tokens_per_round,
                "gamma": r.gamma,
                "gamma_auto": r.gamma_auto,
                "mean_gamma": r.mean_gamma,
                "tree_levels": list(r.tree_levels),
                "tree_nodes": r.tree_nodes,
                "verify_tokens": _mean_pass_tokens(r),
                "verify_s": (v.mean_cycles / (r.clock_ghz * 1e9)) if (v := r.pass_stats(0, "verify")) else None,
            }
            for a, r in by_acc.items()
            if r.alpha is not None
        }
        entry["drift"] = {a: {k: r.drift.get(k) for k in DRIFT_KEYS} for a, r in by_acc.items() if r.drift}
        entry["theory"] = theory(m, ref)
        workloads.append(entry)
    report = {
        "config": config_name,
        "path": config_path,
        "main": main,
        "comparison": comparison,
        "reference": reference if reference in hardware else None,
        "confidence": confidence,
        "hardware": {name: asdict(h) for name, h in hardware.items()},
        "differences": differences or {},
        "notes": notes or [],
        "workloads": workloads,
    }
    for key in COMPARISONS:
        means = {b: geomean(es, confidence) for b, es in estimates[key].items()}
        report[f"geomean_{key}"] = {b: e.value for b, e in means.items()}
        report[f"geomean_{key}_ci"] = {b: _ci(e) for b, e in means.items()}
    return report


def _ci(e: Estimate) -> list[float] | None:
    return None if e.low is None else [e.low, e.high]


def _mean_pass_tokens(r: Replay) -> float | None:
    """Tokens of the target's mean verify pass (None without verify passes)."""
    v = r.pass_stats(0, "verify")
    return v.mean_tokens if v else None


def _vs_reference(ref: Replay, r: Replay, confidence: float) -> dict:
    """``r``'s decode speedup over the reference accelerator, with its interval."""
    e = compare(ref, r, "decode", confidence)
    return {"speedup": e.value, "ci": _ci(e)}


STEP_PHASES = ("draft", "verify", "decode")
STEP_FIELDS = ("seconds", "macs", "dram_bytes", "peak_macs_per_s")
ENERGY_GROUPS = ("dram", "sram", "pe_array", "vector", "static")
_RATIOS = (
    ("main_speedup_over", "speedup"),
    ("main_speedup_end_to_end_over", "speedup_end_to_end"),
    ("main_energy_efficiency_over", "energy_efficiency"),
)
ROW_COLUMNS = (
    "workload",
    "source",
    "sequences",
    "batch",
    "max_batch",
    "accelerator",
    "is_main",
    "decoding",
    "draft",
    "rows",
    "cols",
    "pes",
    "dataflow",
    "clock_ghz",
    "dram_gbps",
    "dram",
    "capacity_gib",
    "resident_gib",
    "tokens",
    "latency_s",
    "prefill_latency_s",
    "decode_latency_per_token_s",
    "tokens_per_s",
    "energy_j_per_token",
    *(f"energy_{g}_j" for g in ENERGY_GROUPS),
    "roofline_efficiency",
    "mode_switches",
    *(f"stall_{c}_cycles" for c in ("dram", "sram_fill", "buffer", "sram_read", "mode_switch", "drain")),
    *(f"{col}{suffix}" for col, _ in _RATIOS for suffix in ("", "_ci_low", "_ci_high")),
    "reference",
    "speedup_vs_reference",
    "speedup_vs_reference_ci_low",
    "speedup_vs_reference_ci_high",
    "energy_vs_reference",
    "acceptance_mode",
    "alpha",
    "configured_alpha",
    "tokens_per_round",
    "gamma",
    "leviathan_speedup",
    "cost_ratio_c",
    "token_agreement",
    "perplexity",
    *(f"{p}_step_{f}" for p in STEP_PHASES for f in STEP_FIELDS),
)
"""Columns of the tidy table: one row per workload x accelerator (energies in J per generated token, step
figures per mean pass; ``main_*_over``: the main accelerator's ratio over this row's, with the bounds of its
confidence interval in ``*_ci_low``/``*_ci_high``; ``*_vs_fp16``: this row's decode speedup and energy per
token relative to the reference accelerator, when there is one: the run config's ``reference``, fp16 by
default, whose name the report records; the columns keep their names whatever it is)."""
TEXT_COLUMNS = (
    "workload",
    "source",
    "accelerator",
    "decoding",
    "draft",
    "dataflow",
    "dram",
    "acceptance_mode",
    "reference",
)
#: columns every row has (the others are empty where a figure does not apply: baselines' own speedup, ...)
ALWAYS_FILLED = (
    "workload",
    "source",
    "sequences",
    "accelerator",
    "is_main",
    "decoding",
    "draft",
    "rows",
    "cols",
    "pes",
    "dataflow",
    "clock_ghz",
    "dram_gbps",
    "dram",
    "capacity_gib",
    "tokens",
    "latency_s",
    "prefill_latency_s",
    "decode_latency_per_token_s",
    "tokens_per_s",
    "energy_j_per_token",
    *(f"energy_{g}_j" for g in ENERGY_GROUPS),
    "roofline_efficiency",
)


def report_rows(report: dict) -> list[dict]:
    """The report as tidy rows (``ROW_COLUMNS``; None where a figure does not apply)."""
    rows = []
    main = report["main"]
    for w in report["workloads"]:
        ref = w["accelerators"].get(report.get("reference", DEFAULT_REFERENCE))
        for acc, m in w["accelerators"].items():
            hw = HardwareSummary(**report["hardware"][acc])
            drift = w["drift"].get(acc, {})
            acceptance = w["acceptance"].get(acc, {})
            theory = w["theory"] if acc == main and w["theory"] else {}
            steps = m.get("steps", {})
            vs_ref = w["vs_reference"].get(acc, {})
            resident = m.get("resident_bytes") or {}
            row = {
                "workload": w["name"],
                "source": w["source"],
                "sequences": w["sequences"],
                "batch": m.get("batch", 1),
                "max_batch": m.get("max_batch", 1),
                "accelerator": acc,
                "is_main": acc == main,
                "decoding": hw.decoding,
                "draft": hw.draft,
                "rows": hw.rows,
                "cols": hw.cols,
                "pes": hw.pes,
                "dataflow": hw.dataflow,
                "clock_ghz": hw.clock_ghz,
                "dram_gbps": hw.dram_gbps,
                "dram": hw.dram,
                "capacity_gib": hw.capacity_gib,
                "resident_gib": resident["total"] / 2**30 if resident else None,
                **{
                    k: m[k]
                    for k in (
                        "tokens",
                        "latency_s",
                        "prefill_latency_s",
                        "decode_latency_per_token_s",
                        "tokens_per_s",
                        "energy_j_per_token",
                        "roofline_efficiency",
                        "mode_switches",
                    )
                },
                **{f"energy_{g}_j": m["energy_breakdown_j"].get(g, 0.0) for g in ENERGY_GROUPS},
                **{f"stall_{c}_cycles": v for c, v in m["stall_cycles"].items()},
                "reference": report.get("reference", DEFAULT_REFERENCE),
                "speedup_vs_reference": vs_ref.get("speedup"),
                "energy_vs_reference": m["energy_j_per_token"] / ref["energy_j_per_token"] if ref else None,
                "acceptance_mode": w["acceptance_mode"],
                "alpha": acceptance.get("alpha"),
                "configured_alpha": acceptance.get("configured_alpha"),
                "tokens_per_round": acceptance.get("tokens_per_round"),
                "gamma": acceptance.get("gamma"),
                "leviathan_speedup": theory.get("leviathan_speedup"),
                "cost_ratio_c": theory.get("cost_ratio_c"),
                "token_agreement": drift.get("token_agreement"),
                "perplexity": drift.get("perplexity"),
                **{f"{p}_step_{f}": steps.get(p, {}).get(f) for p in STEP_PHASES for f in STEP_FIELDS},
            }
            row["speedup_vs_reference_ci_low"], row["speedup_vs_reference_ci_high"] = vs_ref.get("ci") or (None, None)
            for col, key in _RATIOS:
                row[col] = w[key].get(acc)
                row[f"{col}_ci_low"], row[f"{col}_ci_high"] = w[f"{key}_ci"].get(acc) or (None, None)
            rows.append({c: row.get(c) for c in ROW_COLUMNS})
    return rows


#: columns report.csv has after ``ROW_COLUMNS``: the row's accelerator precision (:func:`precision`) and
#: the run's provenance (``report["provenance"]``, the same on every row): the specsim version, the
#: ``--set`` overrides as given (a JSON list) and the digest of every input file's SHA-256
#: (:func:`specsim.results.provenance.inputs_digest`); empty when the report has no provenance
REPORT_EXTRA_COLUMNS = ("precision", "specsim_version", "overrides", "inputs_sha256")


def report_csv(report: dict) -> str:
    """The tidy rows as CSV (empty cells where a figure does not apply), then ``REPORT_EXTRA_COLUMNS``."""
    prov = report.get("provenance") or {}
    extra = {
        "specsim_version": prov.get("specsim_version", ""),
        "overrides": json.dumps(prov["overrides"]) if "overrides" in prov else "",
        "inputs_sha256": prov.get("inputs_sha256", ""),
    }
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=(*ROW_COLUMNS, *REPORT_EXTRA_COLUMNS))
    writer.writeheader()
    for row in report_rows(report):
        writer.writerow(
            {
                **{k: "" if v is None else v for k, v in row.items()},
                "precision": report["hardware"][row["accelerator"]].get("precision", ""),
                **extra,
            }
        )
    return out.getvalue()


def ratio_text(value: float, ci: list[float] | None) -> str:
    """``2.160x (2.12-2.20)``: a ratio and its confidence interval, or the ratio alone."""
    return f"{value:.3f}x" + (f" ({ci[0]:.2f}-{ci[1]:.2f})" if ci else "")


def _drift_text(drift: dict) -> str:
    """``0.044 / 93.0``: token agreement with FP16 and perplexity, ``-`` for what the trace did not measure."""
    agreement, perplexity = drift.get("token_agreement"), drift.get("perplexity")
    return (
        (f"{agreement:.3f}" if agreement is not None else "-")
        + " / "
        + (f"{perplexity:.1f}" if perplexity is not None else "-")
    )


def hardware_text(hw: HardwareSummary) -> str:
    """``64x64 ws, 1 GHz, 1024 GB/s``: what a reader compares accelerators by."""
    return f"{hw.rows}x{hw.cols} {hw.dataflow}, {hw.clock_ghz:g} GHz, {hw.dram_gbps:g} GB/s"


def accelerator_label(report: dict, name: str) -> str:
    """``olive (W4A4)``: an accelerator's name with its precision (the name alone in older reports)."""
    prec = report["hardware"][name].get("precision")
    return f"{name} ({prec})" if prec else name


def iid_tokens_per_round(alpha: float, gamma: int) -> float:
    """Expected tokens per round at i.i.d. acceptance ``alpha`` with ``gamma`` drafts: (1 - a^(g+1)) / (1 - a)."""
    return gamma + 1.0 if alpha >= 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)


def break_even_alpha(tokens: float, gamma: int) -> float | None:
    """The i.i.d. acceptance at which a round of ``gamma`` drafts yields ``tokens`` tokens on average
    (0 when one token is enough; None when more than gamma + 1 are needed: no acceptance reaches it)."""
    if tokens <= 1:
        return 0.0
    if tokens > gamma + 1:
        return None
    low, high = 0.0, 1.0
    for _ in range(60):  # iid_tokens_per_round rises with alpha
        mid = (low + high) / 2
        low, high = (mid, high) if iid_tokens_per_round(mid, gamma) < tokens else (low, mid)
    return (low + high) / 2


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def reading(report: dict, w: dict) -> list[str]:
    """What one workload's figures say, in sentences that follow from the report's own numbers: how the
    main accelerator compares to the reference (with its interval), what one round of speculative decoding
    costs in reference decode passes against the tokens it yields, the acceptance that would break even,
    and which baselines decode faster (with whether they are lossless). Empty when nothing follows."""
    main, ref = report["main"], report.get("reference")
    level = f"{100 * report['confidence']:g}%"
    lines = []
    th = w.get("theory")
    if th and ref and ref != main and ref in w["speedup"]:
        s, ci = w["speedup"][ref], w["speedup_ci"].get(ref)
        if ci and ci[0] > 1:
            verdict = f"{main} decodes {s:.3f}x as fast as {ref} ({level} CI {ci[0]:.2f}-{ci[1]:.2f}, above 1)"
        elif ci and ci[1] < 1:
            verdict = f"{main} decodes slower than {ref}: {s:.3f}x ({level} CI {ci[0]:.2f}-{ci[1]:.2f}, below 1)"
        elif ci:
            verdict = (
                f"{main} vs {ref}: {s:.3f}x, but the {level} CI {ci[0]:.2f}-{ci[1]:.2f} includes 1 (no "
                "significant difference)"
            )
        else:
            verdict = f"{main} vs {ref}: {s:.3f}x (one sequence: no interval)"
        d, c, v, tau = th["draft_passes_per_round"], th["cost_ratio_c"], th["verify_cost_ratio"], th["tokens_per_round"]
        gamma, alpha = th["gamma"], th["alpha"]
        cost = d * c + v
        lines.append(
            f"{verdict}. A round costs {d:.2f} drafts x {c:.3f} + a verify of {v:.3f} = {cost:.2f} "
            f"{ref} decode passes and yields {tau:.2f} tokens."
        )
        need = break_even_alpha(cost, gamma)
        if need is None:
            lines.append(
                f"Breaking even needs {cost:.2f} tokens per round, more than the {gamma + 1} a round of "
                f"gamma {gamma} can yield: at this draft cost no acceptance rate makes {main} faster "
                f"than {ref}."
            )
        else:
            side = "below" if alpha < need else "above"
            slower = s < 1 and (not ci or ci[1] < 1)
            judged = f": too low to beat {ref} on this workload" if alpha < need and slower else ""
            lines.append(
                f"Breaking even needs {cost:.2f} tokens per round: alpha {need:.2f} at gamma {gamma} "
                f"(i.i.d. acceptance); {main}'s draft accepts alpha {alpha:.3f}, {side} it{judged}."
            )
    faster = [
        b
        for b, v in w["speedup"].items()  # below 1 with the whole interval
        if (w["speedup_ci"].get(b) or [v, v])[1] < 1
    ]
    if faster:
        hw = report["hardware"]
        lossy = [b for b in faster if not hw[b].get("lossless", True)]
        lossless = [b for b in faster if b not in lossy]
        parts = ([f"{_names(lossless)} (lossless)"] if lossless else []) + (
            [f"{_names(lossy)} ({'none of them' if len(lossy) > 1 else 'not'} lossless)"] if lossy else []
        )
        lines.append(f"Faster than {main} per decoded token here ({level} CI below 1): " + "; ".join(parts) + ".")
    return lines


WIDE_COLUMNS = 190  #: the width of --wide's single table (at least)
NARROW_COLUMNS = 100  #: the width of the split tables when output goes to a file or pipe without COLUMNS


def report_console(wide: bool = False):
    """A rich console for :func:`print_report`: the terminal's width (or ``COLUMNS``), 100 columns when
    output goes to a file or pipe; at least ``WIDE_COLUMNS`` for ``wide``."""
    import os
    import sys

    from rich.console import Console

    sized = sys.stdout.isatty() or str(os.environ.get("COLUMNS", "")).isdigit()
    width = None if sized else NARROW_COLUMNS
    if wide:
        width = max(WIDE_COLUMNS, Console(width=width).width)
    return Console(width=width, markup=False, highlight=False)  # names are data, not markup


def _table(title: str, caption: str | None = None, edge: bool = False):
    """A table drawn in ASCII (a line's length is its width in any terminal, log or pager); without
    ``edge``, no outer frame (four columns more for the cells)."""
    from rich import box
    from rich.table import Table

    return Table(
        title=title,
        caption=caption,
        caption_justify="left",
        title_justify="left",
        box=box.ASCII2,
        show_edge=edge,
        pad_edge=edge,
    )


def _say(console, text: str, indent: int = 2) -> None:
    """A paragraph under a table, wrapped to the console's width with a hanging indent."""
    import textwrap

    console.print(
        textwrap.fill(
            text,
            width=max(console.width, 40),
            initial_indent=" " * indent,
            subsequent_indent=" " * (indent + 2),
            break_on_hyphens=False,
        ),
        soft_wrap=True,
    )


def _column(t, header: str, left: bool = False, no_wrap: bool = False) -> None:
    """Left-aligned names, right-aligned numbers; a cell too wide for the terminal folds, never ``...``
    (``no_wrap``: a column of numbers, kept whole while the wrapping columns can give room)."""
    t.add_column(header, justify="left" if left else "right", overflow="fold", no_wrap=no_wrap)


def _energy_shares(m: dict) -> str:
    e = m["energy_breakdown_j"]
    return "/".join(f"{100 * e.get(k, 0.0) / max(m['energy_j_per_token'], 1e-30):.0f}" for k in ENERGY_GROUPS)


def _output_text(report: dict, w: dict, acc: str) -> str:
    drift = w["drift"].get(acc)
    return _drift_text(drift) if drift else "lossless" if report["hardware"][acc]["lossless"] else "-"


def _speedup_caption(main: str, drift: bool = True) -> str:
    return (
        f"speedup = baseline time / {main} time per decoded token (end to end: with the prefill); energy "
        f"eff. = baseline energy / {main} energy per token: > 1 means {main} is faster (more efficient)."
        + (" token agr.: share of tokens equal to FP16's; ppl: perplexity" if drift else "")
    )


def _title(w: dict) -> str:
    return f"{w['name']} ({'SHAPE-DERIVED' if w['source'] == 'shape' else 'real trace'}{_batch_text(w)})"


def _batch_text(w: dict) -> str:
    """ ", batch B" when sequences decode together (and how many a batch held when the workload has fewer)."""
    m = next(iter(w["accelerators"].values()))
    batch, most = m.get("batch", 1), m.get("max_batch", 1)
    if batch == 1:
        return ""
    return f", batch {batch}" if most == batch else f", batch {batch}: {most} sequences, all the workload has"


def print_report(report: dict, console=None, wide: bool = False) -> None:
    """The report on the terminal: per workload a time and energy table and a speedup table (``wide``:
    one table with both, as wide as it needs), a reading of the figures, then the geometric means."""
    console = console or report_console(wide)
    main = report["main"]
    level = f"{100 * report['confidence']:g}%"
    groups: dict[str, list[str]] = {}
    for name, hw in report["hardware"].items():
        groups.setdefault(hardware_text(HardwareSummary(**hw)), []).append(name)
    if not wide:
        if len(groups) == 1:
            _say(console, f"hardware of every accelerator: {next(iter(groups))}", indent=0)
        for text, names in groups.items() if len(groups) > 1 else ():
            _say(console, f"hardware {text}: {', '.join(names)}", indent=0)
    for w in report["workloads"]:
        (_print_wide if wide else _print_split)(report, w, console, level)
        if w["sequences"] < 2:
            _say(console, "one sequence: no confidence interval (give the workload more prompts)")
        th = w["theory"]
        if th:
            configured = (
                f"configured alpha {th['configured_alpha']:.3f} -> {th['configured_speedup']:.3f}x; "
                if th.get("configured_alpha") is not None
                else ""
            )
            _say(
                console,
                f"Leviathan: {configured}realised alpha {th['alpha']:.3f}, gamma {th['gamma']}, "
                f"c {th['cost_ratio_c']:.3f} -> {th['leviathan_speedup']:.3f}x; with tokens/round "
                f"{th['tokens_per_round']:.2f}, {th['draft_passes_per_round']:.2f} drafts/round and verify "
                f"cost {th['verify_cost_ratio']:.3f} -> {th['step_cost_speedup']:.3f}x; simulated decode "
                f"{th['simulated_decode_speedup']:.3f}x over {report.get('reference', DEFAULT_REFERENCE)}",
            )
        for acc, a in w["acceptance"].items():
            if a.get("tree_levels"):
                _say(
                    console,
                    f"{acc}: token tree of {a['tree_nodes']:.0f} nodes at level {a['tree_levels'][-1]}: "
                    f"{a['tokens_per_round']:.2f} tokens per target round; its verify pass of "
                    f"{a['verify_tokens']:.0f} tokens takes {a['verify_s'] * 1e3:.3f} ms",
                )
            if a.get("gamma_auto"):
                _say(console, f"{acc}: gamma auto, a draft length per round for its batch: mean {a['mean_gamma']:.2f}")
        for line in reading(report, w):
            _say(console, line)
    for name, diffs in report["differences"].items():
        _say(console, f"not like for like: {name} differs from {main} in " + "; ".join(diffs))
    for note in report.get("notes", []):
        _say(console, f"beyond the DRAM preset: {note}")
    if not report["geomean_speedup"]:
        return
    if wide:
        parts = [
            f"{label}: "
            + ", ".join(
                f"{b} {ratio_text(v, report[f'geomean_{key}_ci'][b])}" for b, v in report[f"geomean_{key}"].items()
            )
            for label, key in (
                ("decode speedup", "speedup"),
                ("end to end", "speedup_end_to_end"),
                ("energy efficiency", "energy_efficiency"),
            )
        ]
        _say(console, f"geomean of {main} ({level} CI) - " + "; ".join(parts), indent=0)
        return
    n = len(report["workloads"])
    t = _table(
        f"geometric mean over {n} workload{'s' if n > 1 else ''}: {main}'s speedup ({level} CI)",
        caption=_speedup_caption(main, drift=False),
    )
    for header in ("accelerator", "decode speedup", "end to end", "energy eff."):
        _column(t, header, left=header == "accelerator")
    for b in report["geomean_speedup"]:
        t.add_row(
            accelerator_label(report, b),
            *(ratio_text(report[f"geomean_{key}"][b], report[f"geomean_{key}_ci"][b]) for key in COMPARISONS),
        )
    console.print(t)


#: the time and energy table's number columns: header (broken where it may wrap) and cell of a metrics dict
_TIME_ENERGY = (
    ("new\ntok.", lambda m: f"{m['tokens']}"),
    ("prefill\nms", lambda m: f"{m['prefill_latency_s'] * 1e3:.3f}"),
    ("decode\nms/tok", lambda m: f"{m['decode_latency_per_token_s'] * 1e3:.4f}"),
    ("tok/s", lambda m: f"{m['tokens_per_s']:.1f}"),
    ("mJ/tok", lambda m: f"{m['energy_j_per_token'] * 1e3:.4f}"),
    ("energy % of\nDRAM/SRAM/\nPE/vec/\nstatic", _energy_shares),
    ("roof-\nline\neff.", lambda m: f"{m['roofline_efficiency']:.3f}"),
)


def _print_split(report: dict, w: dict, console, level: str) -> None:
    """Two tables that fit 100 columns: time and energy, and the main accelerator's ratios over each
    baseline with the output's drift. The first names accelerators with their precision when the
    console leaves the names room for it (else a line under the table gives the precisions)."""
    main = report["main"]
    cells = {acc: [cell(m) for _, cell in _TIME_ENERGY] for acc, m in w["accelerators"].items()}
    widths = [
        max(max(map(len, h.split("\n"))), *(len(c[i]) for c in cells.values())) for i, (h, _) in enumerate(_TIME_ENERGY)
    ]
    room = console.width - sum(widths) - 3 * len(widths)  # what the accelerator column may take
    labelled = room >= max(max(len(a), (len(accelerator_label(report, a)) + 1) // 2 + 4) for a in cells)
    batched = next(iter(w["accelerators"].values())).get("batch", 1) > 1
    caption = "\n".join(
        ([w["note"]] if w["source"] == "shape" else [])
        + (["decode ms/tok: time between two tokens of one sequence; tok/s: all sequences together"] if batched else [])
    )
    t = _table(f"{_title(w)}: time and energy per accelerator", caption=caption or None)
    _column(t, "accelerator", left=True)
    for header, _ in _TIME_ENERGY:
        _column(t, header, no_wrap=True)
    for acc, row in cells.items():
        t.add_row(accelerator_label(report, acc) if labelled else acc, *row)
    console.print(t)
    if not labelled:
        _say(console, "precision: " + "; ".join(accelerator_label(report, a) for a in cells))
    t = _table(f"{_title(w)}: {main}'s speedup over each accelerator", caption=_speedup_caption(main))
    for header in ("accelerator", f"decode speedup\n({level} CI)", "end to end", "energy eff.", "token agr.\n/ ppl"):
        _column(t, header, left=header == "accelerator")
    for acc in w["accelerators"]:
        t.add_row(
            acc,
            *("-" if acc == main else ratio_text(w[key][acc], w[f"{key}_ci"][acc]) for key in COMPARISONS),
            _output_text(report, w, acc),
        )
    console.print(t)


def _print_wide(report: dict, w: dict, console, level: str) -> None:
    """One table with every column (``specsim run --wide``)."""
    main = report["main"]
    caption = _speedup_caption(main) + (f"\n{w['note']}" if w["source"] == "shape" else "")
    t = _table(_title(w), caption=caption, edge=True)
    for header in (
        "accelerator",
        "array, clock, DRAM",
        "tokens",
        "prefill ms",
        "decode ms/token",
        "tokens/s",
        "mJ/token",
        "energy % DRAM/SRAM/PE/vec/static",
        "roofline eff.",
        f"{main} speedup (decode, {level} CI)",
        f"{main} speedup (end to end)",
        f"{main} energy eff.",
        "token agr. / ppl",
    ):
        _column(t, header, left=header == "accelerator")
    for acc, m in w["accelerators"].items():
        t.add_row(
            accelerator_label(report, acc),
            hardware_text(HardwareSummary(**report["hardware"][acc])),
            f"{m['tokens']}",
            f"{m['prefill_latency_s'] * 1e3:.3f}",
            f"{m['decode_latency_per_token_s'] * 1e3:.4f}",
            f"{m['tokens_per_s']:.1f}",
            f"{m['energy_j_per_token'] * 1e3:.4f}",
            _energy_shares(m),
            f"{m['roofline_efficiency']:.3f}",
            *("-" if acc == main else ratio_text(w[key][acc], w[f"{key}_ci"][acc]) for key in COMPARISONS),
            _output_text(report, w, acc),
        )
    console.print(t)
