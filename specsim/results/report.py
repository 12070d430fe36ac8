"""The report of ``specsim run``: per workload and accelerator metrics, speedups, Leviathan's theory.

Speedup of the main accelerator over a baseline = the baseline's decode time per generated token /
the main one's (the decode phase is what speculative decoding speeds up; per token because drift
baselines may stop at other lengths than the lossless ones); ``speedup_end_to_end`` includes the
prefill (and a speculative accelerator's draft prefill). Energy efficiency = the baseline's energy per
generated token / the main one's, end to end. Geometric means run over workloads.
"""

from __future__ import annotations

import csv
import io
import math

from specsim.results.decoding import Replay

DRIFT_KEYS = ("token_agreement", "matching_prefix_mean", "teacher_forced_agreement", "perplexity", "perplexity_fp16")


def leviathan_speedup(alpha: float, gamma: int, c: float) -> float:
    """Leviathan et al.'s walltime speedup (1 - a^(g+1)) / ((1 - a)(g c + 1)); a = 1 taken as the limit."""
    tokens = gamma + 1 if alpha >= 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)
    return tokens / (gamma * c + 1)


def theory(main: Replay, fp16: Replay | None) -> dict | None:
    """Theoretical speedup from the measured alpha and cost ratio beside the simulated one, and the
    step costs that explain the gap (all step costs relative to one FP16 decode pass)."""
    if main.alpha is None or fp16 is None or "0/decode" not in fp16.step_cycles or "1/draft" not in main.step_cycles:
        return None
    t_fp16 = fp16.step_cycles["0/decode"] / fp16.clock_ghz
    c = main.step_cycles["1/draft"] / main.clock_ghz / t_fp16
    v = main.step_cycles.get("0/verify", 0.0) / main.clock_ghz / t_fp16
    rounds = main.step_counts.get("0/verify", 0)
    drafts_per_round = main.step_counts["1/draft"] / rounds if rounds else float(main.gamma or 0)
    tau = main.mean_tokens_per_round or 1.0
    main_decode = main.metrics["decode_latency_per_token_s"]
    fp16_decode = fp16.metrics["decode_latency_per_token_s"]
    return {
        "alpha": main.alpha, "gamma": main.gamma, "cost_ratio_c": c,
        "leviathan_speedup": leviathan_speedup(main.alpha, main.gamma or 0, c),
        "tokens_per_round": tau, "draft_passes_per_round": drafts_per_round, "verify_cost_ratio": v,
        "step_cost_speedup": tau / (drafts_per_round * c + v),
        "simulated_decode_speedup": fp16_decode / main_decode,
        "explanation": "leviathan_speedup assumes i.i.d. acceptance, gamma drafts per round and a verify pass "
                       "costing one FP16 decode pass; step_cost_speedup uses the measured tokens per round, "
                       "draft passes per round and verify cost (v); simulated_decode_speedup adds what the "
                       "step means leave out (mode switches, rounds cut short at the token limit, prefetch across "
                       "passes).",
    }


def build_report(config_name: str, config_path: str, main: str, comparison: str, hardware: dict,
                 replays: dict[str, dict[str, Replay]]) -> dict:
    """The report object (``report.json``; ``specsim run --json`` prints it)."""
    workloads = []
    for wname, by_acc in replays.items():
        m = by_acc[main]
        per_token = {a: r.metrics["decode_latency_per_token_s"] for a, r in by_acc.items()}
        end_to_end = {a: r.seconds / max(r.tokens, 1) for a, r in by_acc.items()}
        energy = {a: sum(r.energy_pj.values()) / max(r.tokens, 1) for a, r in by_acc.items()}
        baselines = [a for a in by_acc if a != main]
        workloads.append({
            "name": wname, "source": m.source, "note": m.note,
            "accelerators": {a: r.metrics for a, r in by_acc.items()},
            "speedup": {b: per_token[b] / per_token[main] for b in baselines},
            "speedup_end_to_end": {b: end_to_end[b] / end_to_end[main] for b in baselines},
            "energy_efficiency": {b: energy[b] / energy[main] for b in baselines},
            "acceptance": {a: {"alpha": r.alpha, "tokens_per_round": r.mean_tokens_per_round, "gamma": r.gamma}
                           for a, r in by_acc.items() if r.alpha is not None},
            "drift": {a: {k: r.drift.get(k) for k in DRIFT_KEYS} for a, r in by_acc.items() if r.drift},
            "theory": theory(m, by_acc.get("fp16")),
        })
    names = [b for b in (workloads[0]["speedup"] if workloads else {})]

    def geomean(key: str) -> dict:
        return {b: math.exp(sum(math.log(w[key][b]) for w in workloads) / len(workloads)) for b in names}

    return {"config": config_name, "path": config_path, "main": main, "comparison": comparison,
            "hardware": hardware, "workloads": workloads, "geomean_speedup": geomean("speedup"),
            "geomean_speedup_end_to_end": geomean("speedup_end_to_end"),
            "geomean_energy_efficiency": geomean("energy_efficiency")}


STEP_PHASES = ("draft", "verify", "decode")
STEP_FIELDS = ("seconds", "macs", "dram_bytes", "peak_macs_per_s")
ENERGY_GROUPS = ("dram", "sram", "pe_array", "vector", "static")
ROW_COLUMNS = (
    "workload", "source", "accelerator", "is_main", "decoding", "draft", "rows", "cols", "pes", "dataflow",
    "clock_ghz", "dram_gbps", "tokens", "latency_s", "prefill_latency_s", "decode_latency_per_token_s",
    "tokens_per_s", "energy_j_per_token", *(f"energy_{g}_j" for g in ENERGY_GROUPS), "roofline_efficiency",
    "mode_switches", *(f"stall_{c}_cycles" for c in ("dram", "sram_fill", "buffer", "sram_read", "mode_switch",
                                                      "drain")),
    "main_speedup_over", "main_speedup_end_to_end_over", "main_energy_efficiency_over", "speedup_vs_fp16",
    "energy_vs_fp16", "alpha", "tokens_per_round", "gamma", "leviathan_speedup", "cost_ratio_c",
    "token_agreement", "perplexity", *(f"{p}_step_{f}" for p in STEP_PHASES for f in STEP_FIELDS))
"""Columns of the tidy table: one row per workload x accelerator (energies in J per generated token, step
figures per mean pass; ``main_*_over``: the main accelerator's ratio over this row's; ``*_vs_fp16``: this
row's decode speedup and energy per token relative to the accelerator named ``fp16``, when there is one)."""


def report_rows(report: dict) -> list[dict]:
    """The report as tidy rows (``ROW_COLUMNS``; None where a figure does not apply)."""
    rows = []
    main = report["main"]
    for w in report["workloads"]:
        ref = w["accelerators"].get("fp16")
        for acc, m in w["accelerators"].items():
            hw = report["hardware"][acc]
            drift = w["drift"].get(acc, {})
            acceptance = w["acceptance"].get(acc, {})
            theory = w["theory"] if acc == main and w["theory"] else {}
            steps = m.get("steps", {})
            row = {
                "workload": w["name"], "source": w["source"], "accelerator": acc, "is_main": acc == main,
                "decoding": hw["decoding"], "draft": hw["draft"], "rows": hw["rows"], "cols": hw["cols"],
                "pes": hw["rows"] * hw["cols"], "dataflow": hw["dataflow"], "clock_ghz": hw["clock_ghz"],
                "dram_gbps": hw["dram_gbps"],
                **{k: m[k] for k in ("tokens", "latency_s", "prefill_latency_s", "decode_latency_per_token_s",
                                     "tokens_per_s", "energy_j_per_token", "roofline_efficiency", "mode_switches")},
                **{f"energy_{g}_j": m["energy_breakdown_j"].get(g, 0.0) for g in ENERGY_GROUPS},
                **{f"stall_{c}_cycles": v for c, v in m["stall_cycles"].items()},
                "main_speedup_over": w["speedup"].get(acc), "main_speedup_end_to_end_over":
                w["speedup_end_to_end"].get(acc), "main_energy_efficiency_over": w["energy_efficiency"].get(acc),
                "speedup_vs_fp16": ref["decode_latency_per_token_s"] / m["decode_latency_per_token_s"] if ref else None,
                "energy_vs_fp16": m["energy_j_per_token"] / ref["energy_j_per_token"] if ref else None,
                "alpha": acceptance.get("alpha"), "tokens_per_round": acceptance.get("tokens_per_round"),
                "gamma": acceptance.get("gamma"), "leviathan_speedup": theory.get("leviathan_speedup"),
                "cost_ratio_c": theory.get("cost_ratio_c"), "token_agreement": drift.get("token_agreement"),
                "perplexity": drift.get("perplexity"),
                **{f"{p}_step_{f}": steps.get(p, {}).get(f) for p in STEP_PHASES for f in STEP_FIELDS}}
            rows.append({c: row.get(c) for c in ROW_COLUMNS})
    return rows


def report_csv(report: dict) -> str:
    """The tidy rows as CSV (empty cells where a figure does not apply)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROW_COLUMNS)
    writer.writeheader()
    for row in report_rows(report):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def print_report(report: dict, console=None) -> None:
    """Rich tables on the terminal: one per workload, then the geometric means."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 190)
    main = report["main"]
    for w in report["workloads"]:
        title = f"{w['name']} ({'SHAPE-DERIVED' if w['source'] == 'shape' else 'real trace'})"
        t = Table(title=title, caption=w["note"] if w["source"] == "shape" else None)
        for col in ("accelerator", "tokens", "prefill ms", "decode ms/token", "tokens/s", "mJ/token",
                    "energy % DRAM/SRAM/PE/vec/static", "roofline eff.", f"{main} speedup (decode)",
                    f"{main} speedup (end to end)", f"{main} energy eff.", "token agr. / ppl"):
            t.add_column(col, justify="left" if col == "accelerator" else "right")
        for acc, m in w["accelerators"].items():
            e = m["energy_breakdown_j"]
            drift = w["drift"].get(acc)
            t.add_row(acc, f"{m['tokens']}", f"{m['prefill_latency_s'] * 1e3:.3f}",
                      f"{m['decode_latency_per_token_s'] * 1e3:.4f}", f"{m['tokens_per_s']:.1f}",
                      f"{m['energy_j_per_token'] * 1e3:.4f}",
                      "/".join(f"{100 * e[k] / max(m['energy_j_per_token'], 1e-30):.0f}"
                               for k in ("dram", "sram", "pe_array", "vector", "static")),
                      f"{m['roofline_efficiency']:.3f}",
                      "-" if acc == main else f"{w['speedup'][acc]:.3f}x",
                      "-" if acc == main else f"{w['speedup_end_to_end'][acc]:.3f}x",
                      "-" if acc == main else f"{w['energy_efficiency'][acc]:.3f}x",
                      f"{drift['token_agreement']:.3f} / {drift['perplexity']:.1f}" if drift else "lossless"
                      if acc == main or acc == "fp16" else "-")
        console.print(t)
        th = w["theory"]
        if th:
            console.print(f"  Leviathan: alpha {th['alpha']:.3f}, gamma {th['gamma']}, c {th['cost_ratio_c']:.3f} -> "
                          f"{th['leviathan_speedup']:.3f}x; with measured tokens/round {th['tokens_per_round']:.2f}, "
                          f"{th['draft_passes_per_round']:.2f} drafts/round and verify cost "
                          f"{th['verify_cost_ratio']:.3f} -> {th['step_cost_speedup']:.3f}x; simulated decode "
                          f"{th['simulated_decode_speedup']:.3f}x over fp16")
    if report["geomean_speedup"]:
        console.print("geomean decode speedup of " + main + ": " + ", ".join(
            f"{b} {v:.3f}x" for b, v in report["geomean_speedup"].items()) + "; end to end: " + ", ".join(
            f"{b} {v:.3f}x" for b, v in report["geomean_speedup_end_to_end"].items()) + "; energy efficiency: " + ", ".join(
            f"{b} {v:.3f}x" for b, v in report["geomean_energy_efficiency"].items()))
