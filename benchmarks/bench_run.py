"""Wall time of the main job, `specsim run hwconfigs/speq.yaml`, cold (empty JIT cache) and warm.

Each run is a fresh process, timed whole (interpreter start, imports, config and trace loading,
simulation, report). The first process gets an empty Numba cache (it compiles the engine); the next
ones reuse that cache, as every run after the first on a machine does::

    python benchmarks/bench_run.py [--config hwconfigs/speq.yaml] [--warm-runs 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="hwconfigs/speq.yaml")
    ap.add_argument("--warm-runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for _ in range(1 + args.warm_runs):
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "specsim.cli.main", "run", args.config, "--out", out, "--json"],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - t)
    print(
        f"specsim run {args.config}: cold (empty JIT cache) {times[0]:.1f} s; warm "
        + ", ".join(f"{t:.1f}" for t in times[1:])
        + f" s (best {min(times[1:]):.1f} s)"
    )


if __name__ == "__main__":
    main()
