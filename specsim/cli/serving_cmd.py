"""``specsim serving``: arriving requests served with continuous batching on every accelerator of a config."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

SERVING_MARKER = ".specsim-serving.json"  #: in every folder `specsim serving --out` writes
SERVING_FILES = frozenset({SERVING_MARKER, "serving.csv", "serving.json", "requests.csv"})
MAX_HORIZON_S = 1e9  #: seconds (a guard)
MAX_TOKEN_BUDGET = 1 << 20  #: tokens per iteration (a guard)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serving",
        help="serve arriving requests with continuous batching (TTFT, TPOT, latency, throughput)",
        description="Request-level simulation (SimPy) of a run config's accelerator and baselines serving the "
        "same requests of its shape workload: Poisson arrivals or a request file, continuous batching, "
        "speculative rounds with per-sequence acceptance, iteration costs from the cycle engine. Reports "
        "time to first token, time per output token and end-to-end latency (p50/p90/p99), throughput "
        "and busy share per accelerator. See docs/serving.md.",
        epilog="example: specsim serving hwconfigs/sweep_llama2_7b.yaml --rates 0.05,0.1,0.2 --out results/serving",
    )
    p.add_argument("config", help="run config YAML, e.g. hwconfigs/sweep_llama2_7b.yaml")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--rate", type=float, default=None, help="Poisson arrivals, requests/s (default 0.1)")
    load.add_argument("--rates", default=None, help="comma-separated rates (requests/s) for a throughput-latency curve")
    load.add_argument(
        "--arrivals", default=None, help="request file: .csv or .jsonl (arrival_s,prompt_tokens,output_tokens)"
    )
    p.add_argument(
        "--requests", type=int, default=None, help="requests to simulate (default: 200 Poisson ones, or the whole file)"
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=None,
        help="sequences per iteration, 1..256 (default: the most every DRAM holds, up to 32)",
    )
    p.add_argument(
        "--token-budget", type=int, default=2048, help="tokens per iteration (prefill + decode; default 2048)"
    )
    p.add_argument(
        "--horizon", type=float, default=math.inf, help="seconds to simulate (default: until every request has left)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of arrivals, lengths and acceptance draws (default 0)")
    p.add_argument(
        "--gamma", default=None, help="draft length of speculative accelerators: auto or 1..32 (default: the config's)"
    )
    p.add_argument("--workload", default=None, help="shape workload to serve (default: the config's first)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config value"
    )
    p.add_argument("--json", action="store_true", help="print the summaries as JSON on stdout")
    p.add_argument("--out", default=None, help="folder for serving.csv, serving.json and requests.csv (written whole)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from specsim.atomicdir import atomic_folder
    from specsim.results.config import load_run_config
    from specsim.results.serving_requests import read_requests
    from specsim.results.serving_run import (
        prepare_all,
        serve_all,
        shape_workload,
        summarize,
        write_requests,
        write_table,
    )

    rates, policy = _check_args(args)
    out = _check_out(args.out) if args.out else None
    cfg = load_run_config(args.config, args.overrides)
    workload = shape_workload(cfg, args.workload)
    file_requests = read_requests(args.arrivals, args.requests) if args.arrivals else None
    streams = [(r, file_requests if file_requests else _poisson(r, args)) for r in rates]
    longest = max(q.prompt_tokens + q.output_tokens for _, reqs in streams for q in reqs)
    longest_prompt = max(q.prompt_tokens for _, reqs in streams for q in reqs)
    served, policy = prepare_all(cfg, workload, policy, longest, longest_prompt)
    progress = not args.no_progress and not args.json and sys.stderr.isatty()
    rows, runs = [], []
    for rate, reqs in streams:
        if progress:
            print(f"serving {len(reqs)} requests at {_rate(rate)} on {len(served)} accelerators ...", file=sys.stderr)
        for result in serve_all(served, reqs, policy, args.seed):
            rows.append(summarize(result, rate))
            runs.append((rate, result))
    report = {
        "kind": "specsim-serving",
        "config": str(Path(args.config).resolve()),
        "overrides": list(args.overrides),
        "workload": workload.name,
        "policy": {**asdict(policy), "horizon_s": None if math.isinf(policy.horizon_s) else policy.horizon_s},
        "seed": args.seed,
        "arrivals": args.arrivals,
        "cache": {s.accelerator.name: {"engine_calls": s.costs.misses, "hit_rate": s.costs.hit_rate} for s in served},
        "rows": [_json_row(asdict(r)) for r in rows],
    }
    if out is not None:
        marker = {k: report[k] for k in ("kind", "config", "overrides")}
        with atomic_folder(out, _replaceable) as tmp:
            (tmp / SERVING_MARKER).write_text(json.dumps(marker) + "\n")
            write_table(rows, tmp / "serving.csv")
            write_requests(runs, tmp / "requests.csv")
            (tmp / "serving.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print_table(rows, policy, workload.name)
        if out is not None:
            print(f"wrote {out / 'serving.csv'}, {out / 'serving.json'} and {out / 'requests.csv'}")
    return 0


def _check_args(args):
    """Every option checked before any work (one line naming the option and what is expected)."""
    from specsim.errors import SpecsimError
    from specsim.results.serving import Policy
    from specsim.trace.batching import MAX_BATCH

    if args.rates is not None:
        try:
            rates = [float(r) for r in args.rates.split(",")]
        except ValueError:
            raise SpecsimError(
                f"--rates {args.rates}: expected comma-separated requests/s, e.g. 0.05,0.1,0.2"
            ) from None
    elif args.arrivals is not None:
        rates = [math.nan]
    else:
        rates = [0.1 if args.rate is None else args.rate]
    for r in rates:
        if not math.isnan(r) or args.arrivals is None:
            if not (math.isfinite(r) and r > 0):
                raise SpecsimError(f"--rate {r:g}: expected a positive number of requests per second")
    checks = [
        (args.requests is None or 1 <= args.requests <= 1_000_000, "--requests", args.requests, "1..1000000"),
        (
            args.max_batch is None or 1 <= args.max_batch <= MAX_BATCH,
            "--max-batch",
            args.max_batch,
            f"1..{MAX_BATCH} sequences",
        ),
        (
            1 <= args.token_budget <= MAX_TOKEN_BUDGET,
            "--token-budget",
            args.token_budget,
            f"1..{MAX_TOKEN_BUDGET} tokens",
        ),
        (
            args.horizon > 0 and (math.isinf(args.horizon) or args.horizon <= MAX_HORIZON_S),
            "--horizon",
            args.horizon,
            "seconds > 0",
        ),
        (args.seed >= 0, "--seed", args.seed, "an integer >= 0"),
    ]
    for ok, option, value, expected in checks:
        if not ok:
            raise SpecsimError(f"{option} {value}: expected {expected}")
    return rates, Policy(args.max_batch or 0, args.token_budget, args.horizon, _gamma(args.gamma))


def _gamma(text: str | None) -> int | None:
    from specsim.errors import SpecsimError
    from specsim.trace.tracefile import MAX_DRAFT

    if text is None:
        return None
    if text == "auto":
        return 0
    if not text.isdigit() or not 1 <= int(text) <= MAX_DRAFT:
        raise SpecsimError(f"--gamma {text}: expected auto or a draft length 1..{MAX_DRAFT}")
    return int(text)


def _poisson(rate: float, args):
    from specsim.results.serving_requests import poisson_requests

    return poisson_requests(rate, args.requests or 200, args.seed)


def _check_out(path: str) -> Path:
    """--out: a new or empty folder, or one `specsim serving` wrote (never a user's folder)."""
    from specsim.errors import SpecsimError
    from specsim.outputs import check_output_folder

    p = check_output_folder(path, "--out")
    if p.exists() and not _replaceable(p):
        raise SpecsimError(
            f"--out {path}: is a folder specsim serving did not write (holds other files or no "
            f"{SERVING_MARKER}); specsim never replaces other folders, choose another --out"
        )
    return p


def _replaceable(folder: Path) -> bool:
    entries = list(folder.iterdir())
    if not entries:
        return True
    try:
        marker = json.loads((folder / SERVING_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("kind") == "specsim-serving"
        and all(e.name in SERVING_FILES and e.is_file() and not e.is_symlink() for e in entries)
    )


def _json_row(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def _rate(rate: float) -> str:
    return "the file's arrivals" if math.isnan(rate) else f"{rate:g} requests/s"


def _print_table(rows, policy, workload: str) -> None:
    """Two tables within 100 columns: latency of the finished requests, then throughput, load and energy."""
    print(f"{workload} (SHAPE-DERIVED: operators from its architecture file, no weights run)")
    print(f"max batch {policy.max_batch} sequences, token budget {policy.token_budget} tokens per iteration")
    latency = ("rate/s", "accelerator", "gamma", "done", "unfin.", "TTFT p50", "p90", "TPOT p50", "p90", "p99")
    _print_rows(
        "latency of finished requests: time to first token (s), time per output token (ms)",
        latency + ("E2E p90 s",),
        [
            (
                *_who(r),
                r.finished,
                r.unfinished,
                f"{r.ttft_p50_s:.3f}",
                f"{r.ttft_p90_s:.3f}",
                f"{r.tpot_p50_s * 1e3:.1f}",
                f"{r.tpot_p90_s * 1e3:.1f}",
                f"{r.tpot_p99_s * 1e3:.1f}",
                f"{r.e2e_p90_s:.2f}",
            )
            for r in rows
        ],
    )
    _print_rows(
        "throughput (output tokens, requests) over the simulated span, load and energy",
        ("rate/s", "accelerator", "gamma", "tok/s", "req/s", "busy", "mean batch", "mean gamma", "mJ/tok"),
        [
            (
                *_who(r),
                f"{r.tokens_per_s:.1f}",
                f"{r.requests_per_s:.3f}",
                f"{r.busy_share:.2f}",
                f"{r.mean_batch:.2f}",
                "-" if math.isnan(r.mean_gamma) else f"{r.mean_gamma:.2f}",
                f"{r.energy_j_per_token * 1e3:.1f}",
            )
            for r in rows
        ],
    )


def _who(r) -> tuple[str, str, str]:
    return ("file" if math.isnan(r.rate_rps) else f"{r.rate_rps:g}", r.accelerator, r.gamma)


def _print_rows(title: str, head: tuple[str, ...], rows: list[tuple]) -> None:
    """A plain-text table: the accelerator column left-aligned, numbers right-aligned, each column as wide
    as its widest cell."""
    cells = [tuple(map(str, head)), *[tuple(map(str, r)) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    print(f"\n{title}")
    for k, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
