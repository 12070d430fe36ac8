"""``specsim serving``'s work: every accelerator of a run config serving the same requests, summarised.

The served model is a shape workload of the config (its architecture; acceptance from its
``shape.acceptance`` per speculative accelerator). Each accelerator gets its level templates from a
SHAPE trace (:func:`specsim.results.decoding.prepare`, which also checks the workload against its DRAM),
its DRAM is checked for the KV cache of ``max_batch`` sequences at the longest request's context, and
its pass costs are memoised across arrival rates.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from specsim.errors import SpecsimError
from specsim.paths import beside
from specsim.results.capacity import check_capacity, residency
from specsim.results.config import Accelerator, RunConfig, WorkloadConfig, accelerators
from specsim.results.decoding import prepare, shape_trace_for
from specsim.results.serving import AUTO_GAMMAS, Acceptance, Policy, ServingRun, serve
from specsim.results.serving_costs import PassCosts
from specsim.results.serving_requests import Request
from specsim.trace.architectures import load_architecture
from specsim.trace.operators import window_kv
from specsim.trace.tracefile import read_trace


@dataclass(frozen=True)
class Served:
    """One accelerator ready to serve: its memoised pass costs, acceptance (None: autoregressive) and
    draft length (0: auto)."""

    accelerator: Accelerator
    costs: PassCosts
    acceptance: Acceptance | None
    gamma: int


@dataclass(frozen=True)
class Summary:
    """One accelerator at one load (seconds, tokens; percentiles over finished requests; throughput and
    busy share over the simulated span; ``mean_in_system`` time-averaged, Little's law:
    ``mean_in_system`` = ``arrival_rate_rps`` x ``mean_latency_s`` when every request finished)."""

    accelerator: str
    gamma: str
    rate_rps: float  #: nominal Poisson rate (NaN for a request file)
    requests: int
    finished: int
    unfinished: int
    not_arrived: int
    span_s: float
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    tpot_p50_s: float
    tpot_p90_s: float
    tpot_p99_s: float
    e2e_p50_s: float
    e2e_p90_s: float
    e2e_p99_s: float
    tokens_per_s: float
    requests_per_s: float
    busy_share: float
    mean_in_system: float
    arrival_rate_rps: float
    mean_latency_s: float
    energy_j_per_token: float
    mean_batch: float
    mean_gamma: float
    iterations: int


COLUMNS = tuple(f.name for f in fields(Summary))


def shape_workload(cfg: RunConfig, name: str | None) -> WorkloadConfig:
    """The workload to serve: ``name``, or the config's first shape workload."""
    if name is not None:
        found = next((w for w in cfg.workloads if w.name == name), None)
        if found is None:
            have = ", ".join(w.name for w in cfg.workloads) or "none"
            raise SpecsimError(f"--workload {name}: not a workload of {cfg.path} (have: {have})")
    else:
        found = next((w for w in cfg.workloads if w.shape is not None), None)
        if found is None:
            raise SpecsimError(f"{cfg.path}: no shape workload (workloads with shape:) to serve; add one")
    if found.shape is None:
        raise SpecsimError(
            f"--workload {found.name}: replays recorded traces; specsim serving needs a shape workload "
            "(workloads.<i>.shape: an architecture and its acceptance)"
        )
    return found


AUTO_BATCH_LIMIT = 32  #: the largest batch --max-batch's default tries (chosen here)


def prepare_all(cfg: RunConfig, workload: WorkloadConfig, policy: Policy, max_context: int, max_prompt: int):
    """Every accelerator (main first) ready to serve ``workload``, and the policy with its max batch
    (``policy.max_batch`` 0: the most sequences, up to :data:`AUTO_BATCH_LIMIT`, whose KV cache at
    ``max_context`` tokens every accelerator's DRAM holds)."""
    out = []
    for acc in accelerators(cfg):
        trace = shape_trace_for(acc, workload.shape, cfg.path, workload=workload.name)
        templates = prepare(acc, trace, workload.name).templates
        dec = acc.config.decoding
        acceptance, gamma = None, 0
        if dec.kind == "speculative":
            configured = 0 if dec.gamma == "auto" else dec.gamma  # 0: auto (set at load: never None here)
            gamma = configured if policy.gamma is None else policy.gamma
            source = workload.shape.acceptance[acc.config.trace_role]
            source = source if isinstance(source, float) else read_trace(beside(cfg.path, source))
            acceptance = Acceptance.of(source, max(gamma, AUTO_GAMMAS))
        out.append(Served(acc, PassCosts(acc, templates), acceptance, gamma))
    batch = policy.max_batch
    if not batch:
        fits = [b for b in range(1, AUTO_BATCH_LIMIT + 1) if _kv_fits(cfg, workload, out, b, max_context, max_prompt)]
        batch = max(fits, default=1)
    for s in out:
        _check_kv(cfg, workload, s, batch, max_context, max_prompt)
    return out, replace(policy, max_batch=batch)


def _residency(workload, s: Served, max_batch: int, max_context: int, max_prompt: int):
    arch = load_architecture(workload.shape.architecture)
    levels = np.arange(len(s.costs.templates))
    return residency(
        s.accelerator.hardware,
        s.costs.templates,
        s.costs.modes,
        levels,
        np.full(len(levels), max(max_batch, max_prompt)),
        np.full(len(levels), max_batch * max_context),
        0 if arch.tied_embeddings else arch.vocab * arch.hidden,
        # a windowed layer keeps at most its window per sequence (the longest prompt's prefill holds the most)
        lambda w: np.full(len(levels), max_batch * int(window_kv(max_context, max_prompt, w))),
    )


def _kv_fits(cfg, workload, served: list[Served], max_batch: int, max_context: int, max_prompt: int) -> bool:
    return all(
        _residency(workload, s, max_batch, max_context, max_prompt).total <= s.accelerator.hardware.dram.capacity_bytes
        for s in served
    )


def _check_kv(cfg, workload, s: Served, max_batch: int, max_context: int, max_prompt: int) -> None:
    """The DRAM holds the weights and every level's KV cache of ``max_batch`` sequences of ``max_context``."""
    where = (
        f"{cfg.path}: serving {workload.name!r} on accelerator {s.accelerator.name!r}, --max-batch {max_batch} "
        f"sequences of up to {max_context} tokens"
    )
    try:
        check_capacity(where, s.accelerator.hardware, _residency(workload, s, max_batch, max_context, max_prompt))
    except SpecsimError as err:
        raise SpecsimError(f"{err}; or lower --max-batch") from None


def serve_all(served: list[Served], requests: list[Request], policy: Policy, seed: int) -> list[ServingRun]:
    """Every accelerator serving the same ``requests`` (same acceptance draws)."""
    return [serve(s.accelerator.name, s.costs, requests, policy, s.acceptance, s.gamma, seed) for s in served]


def summarize(run: ServingRun, rate: float) -> Summary:
    """The :class:`Summary` of one run (``rate``: the nominal arrival rate, NaN for a request file)."""
    rs = run.requests
    done = [r for r in rs if r.finished]
    arrived = sum(r.arrival_s <= run.span_s for r in rs)
    ttft = np.array([r.first_token_s - r.arrival_s for r in done])
    e2e = np.array([r.finish_s - r.arrival_s for r in done])
    tpot = np.array([(r.finish_s - r.first_token_s) / (r.output_tokens - 1) for r in done if r.output_tokens > 1])
    tokens = sum(r.generated for r in rs)
    span = run.span_s or math.nan
    return Summary(
        run.accelerator,
        run.gamma,
        rate,
        len(rs),
        len(done),
        arrived - len(done),
        len(rs) - arrived,
        run.span_s,
        *_pct(ttft),
        *_pct(tpot),
        *_pct(e2e),
        tokens / span,
        len(done) / span,
        run.busy_s / span,
        run.in_system_area / span,
        arrived / span,
        float(e2e.mean()) if e2e.size else math.nan,
        run.energy_j / tokens if tokens else math.nan,
        run.batch_sum / run.iterations if run.iterations else 0.0,
        run.gamma_sum / run.gamma_iterations if run.gamma_iterations else math.nan,
        run.iterations,
    )


def _pct(x: np.ndarray) -> tuple[float, float, float]:
    if not x.size:
        return (math.nan,) * 3
    return tuple(float(v) for v in np.percentile(x, [50, 90, 99]))


def write_table(rows: list[Summary], path: Path) -> None:
    """The summaries as CSV (one row per accelerator and rate; :data:`COLUMNS`)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in asdict(r).items()})


def write_requests(runs: list[tuple[float, ServingRun]], path: Path) -> None:
    """Every request's outcome per accelerator and rate (seconds; empty: did not happen)."""
    names = ("rate_rps", "accelerator", "index", "arrival_s", "prompt_tokens", "output_tokens")
    names += ("first_token_s", "finish_s", "generated")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for rate, run in runs:
            for r in run.requests:
                w.writerow(
                    [rate, run.accelerator, r.index, f"{r.arrival_s:.9g}", r.prompt_tokens, r.output_tokens]
                    + ["" if math.isnan(t) else f"{t:.9g}" for t in (r.first_token_s, r.finish_s)]
                    + [r.generated]
                )
