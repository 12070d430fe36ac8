"""Engine speed: one full decode step of a Llama-2-7B-shaped model (all layers, all ops) on the PE array.

Reports the JIT cost of a cold process (empty Numba cache), the start of a second process (cache
warm), and the in-process time per step after warm-up, for an FP16 decode step, a SPEQ quarter-mode
draft step and a 5-token verify step. The workload is SHAPE-DERIVED (architecture file, no trace)::

    python benchmarks/bench_engine.py [--arch llama-2-7b] [--kv-len 512] [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from specsim.engine import simulate
from specsim.hardware.lowering import step_table
from specsim.hardware.config import load_hardware
from specsim.trace.architectures import load_architecture
from specsim.trace.operators import architecture_template, template_arrays
t_import = time.perf_counter() - t0
arch = load_architecture(sys.argv[1]); kv_len = int(sys.argv[2]); repeats = int(sys.argv[3])
hw = load_hardware("speq"); modes = tuple(hw.modes)
def table(fmt, mode, tokens):
    arrays, _, formats = template_arrays({0: architecture_template(arch, fmt)})
    return step_table({k: v for k, v in arrays.items()}, formats, {fmt: mode, "fp16": "fp16"}, modes, tokens,
                      kv_len + tokens, kv_streams=arch.kv_heads)
steps = {"decode fp16 (1 token)": table("fp16", "fp16", 1), "draft quarter (1 token)": table("bsfp", "quarter", 1),
         "verify fp16 (5 tokens)": table("fp16", "fp16", 5)}
t1 = time.perf_counter(); first = simulate(hw, steps["decode fp16 (1 token)"]); t_first = time.perf_counter() - t1
out = {"import_s": t_import, "first_call_s": t_first, "steps": {}}
assert "torch" not in sys.modules and "transformers" not in sys.modules
for name, ops in steps.items():
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); r = simulate(hw, ops); times.append(time.perf_counter() - t)
    times.sort()
    out["steps"][name] = {"ops": len(ops), "tiles": int(r.mapping.tiles.sum()), "median_ms": 1e3 * times[len(times) // 2],
                          "min_ms": 1e3 * times[0], "cycles": r.total_cycles,
                          "latency_ms": r.total_cycles / (hw.clock_ghz * 1e6),
                          "weight_bytes": int(r.dram_read_bytes.sum())}
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="llama-2-7b")
    ap.add_argument("--kv-len", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = []
        for label in ("cold process (empty JIT cache)", "second process (JIT cache warm)"):
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, args.arch, str(args.kv_len), str(args.repeats)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            wall = time.perf_counter() - t
            runs.append((label, wall, json.loads(proc.stdout)))
    from specsim.hardware.config import load_hardware

    hw = load_hardware("speq")
    print(
        f"SHAPE-DERIVED workload: {args.arch}, KV length {args.kv_len}, hardware 'speq' ({hw.array.rows}x{hw.array.cols} "
        f"{hw.array.dataflow.upper()}, {hw.dram.stacks} x {hw.dram.preset}, {hw.dram.bandwidth_gbps:g} GB/s)"
    )
    for label, wall, out in runs:
        print(
            f"{label}: imports {out['import_s']:.2f} s, first simulate() {out['first_call_s']:.2f} s, "
            f"process wall {wall:.1f} s"
        )
    print("| step | ops | tiles | simulated latency | engine time per step (median / min) |")
    print("|---|---|---|---|---|")
    for name, s in runs[1][2]["steps"].items():
        print(
            f"| {name} | {s['ops']} | {s['tiles']:,} | {s['latency_ms']:.3f} ms ({s['cycles']:,} cycles) | "
            f"{s['median_ms']:.2f} / {s['min_ms']:.2f} ms |"
        )


if __name__ == "__main__":
    main()
