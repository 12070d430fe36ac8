"""Throughput of a 1,000-point design-space sweep on a Llama-2-7B-shaped workload, all baselines.

The grid (``hwconfigs/sweep_llama2_7b.yaml``, SHAPE-DERIVED): PE rows {16, 32, 64, 128, 256} x draft
length gamma 1..8 x SPEQ acceptance alpha (25 values, 0.50..0.98) = 1,000 points; every point replays
SPEQ and its five baselines (FP16, OliVe, Tender, ML-SpecQD, hierarchical) on one prompt of 64 tokens
with 32 new tokens. Each executor runs in a fresh process (empty replay caches; warm Numba cache), the
sweep call timed alone (the Dask LocalCluster's start-up is reported apart). The three tables must be
identical::

    python benchmarks/bench_sweep.py [--points 1000] [--executors 1,2,dask]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "hwconfigs" / "sweep_llama2_7b.yaml"


def space(points: int) -> dict:
    rows = [16, 32, 64, 128, 256]
    gammas = [1, 2, 3, 4, 5, 6, 7, 8]
    n_alpha = max(1, points // (len(rows) * len(gammas)))
    alphas = [round(0.5 + 0.48 * i / max(n_alpha - 1, 1), 4) for i in range(n_alpha)]
    return {"hardware.array.rows": rows, "decoding.gamma": gammas, "workloads.0.shape.acceptance.speq": alphas}


def child(executor: str, points: int, out: str) -> None:
    """One executor in this (fresh) process; prints a JSON line."""
    import specsim

    grid = space(points)
    specsim.sweep(CONFIG, {k: v[:1] for k, v in grid.items()}, workers=1, progress=False)  # load the JIT cache
    from specsim.results import sweep as sweep_module

    sweep_module._CACHE.clear()
    startup = 0.0
    cluster = client = None
    if executor == "dask":
        from distributed import Client, LocalCluster

        t = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        client.run(lambda: __import__("specsim.results.sweep"))
        startup = time.perf_counter() - t
    t = time.perf_counter()
    frame = specsim.sweep(
        CONFIG, grid, workers=None if executor == "dask" else int(executor), scheduler=client, out=out, progress=False
    )
    seconds = time.perf_counter() - t
    if client:
        client.close()
        cluster.close()
    summary = frame.attrs["summary"]
    print(
        json.dumps(
            {
                "executor": executor,
                "points": summary.points,
                "failed": len(summary.failures),
                "rows": len(frame),
                "seconds": seconds,
                "startup_s": startup,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--executors", default="1,2,dask")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.points, args.out)
        return
    import pandas as pd

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for executor in args.executors.split(","):
            out = Path(tmp) / executor
            proc = subprocess.run(
                [sys.executable, __file__, "--child", executor, "--points", str(args.points), "--out", str(out)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            label = {"1": "1 local worker", "2": "2 local workers", "dask": "Dask LocalCluster (2 x 1 thread)"}
            print(
                f"{label.get(executor, executor):34s} {r['points']} points ({r['failed']} failed, {r['rows']} rows) "
                f"in {r['seconds']:.1f} s = {r['points'] / r['seconds']:.1f} points/s"
                + (f"  (cluster start-up {r['startup_s']:.1f} s, not included)" if executor == "dask" else "")
            )
        tables = [pd.read_parquet(Path(tmp) / e / "results.parquet") for e in args.executors.split(",")]
        same = all(t.equals(tables[0]) for t in tables[1:])
        print(f"tables identical across executors: {same}")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
