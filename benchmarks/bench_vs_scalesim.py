"""specsim vs SCALE-Sim v3.0.0 on the same GEMM list: identical cycles, and how much faster.

SCALE-Sim needs numpy<2, so it runs in its own venv through ``benchmarks/scalesim_reference.py``
(create it with ``python3 -m venv /work/scalesim-venv && /work/scalesim-venv/bin/pip install
'numpy<2' scalesim==3.0.0``). SCALE-Sim's time is its constructor + ``run_scale()`` (imports and
interpreter start excluded); specsim's is ``simulate()`` per GEMM after JIT warm-up (median of
``--repeats``), in ``--ideal-memory --scalesim-compatible`` mode::

    python benchmarks/bench_vs_scalesim.py [--scalesim-python /work/scalesim-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [
    {"rows": 32, "cols": 32, "dataflow": df, "m": m, "n": 1024, "k": 1024}
    for df in ("ws", "os", "is")
    for m in (1, 5, 64)
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalesim-python", default="/work/scalesim-venv/bin/python")
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    if not Path(args.scalesim_python).exists():
        print(f"no SCALE-Sim interpreter at {args.scalesim_python}; see this script's docstring", file=sys.stderr)
        return 2

    from specsim.engine import simulate
    from specsim.hardware.config import load_hardware
    from specsim.hardware.ops import gemm_table

    with tempfile.TemporaryDirectory() as tmp:
        cases_in, out = Path(tmp) / "cases.json", Path(tmp) / "out.json"
        cases_in.write_text(json.dumps(CASES))
        subprocess.run(
            [
                args.scalesim_python,
                str(Path(__file__).with_name("scalesim_reference.py")),
                "--cases",
                str(cases_in),
                "--out",
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        reference = json.loads(out.read_text())["cases"]

    hw = load_hardware("speq")
    modes = tuple(hw.modes)
    rows, total_ref, total_ours, mismatches = [], 0.0, 0.0, 0
    for case in reference:
        h = hw.with_array(case["rows"], case["cols"], case["dataflow"])
        ops = gemm_table(case["m"], case["n"], case["k"], "fp16", modes)
        simulate(h, ops, ideal_memory=True, scalesim_compatible=True)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            r = simulate(h, ops, ideal_memory=True, scalesim_compatible=True)
            times.append(time.perf_counter() - t)
        ours = sorted(times)[len(times) // 2]
        same = r.compute_cycles == case["total_cycles"]
        mismatches += not same
        total_ref += case["wall_s"]
        total_ours += ours
        rows.append(
            f"| {case['dataflow']} | {case['m']}x{case['n']}x{case['k']} | {case['total_cycles']:,} | "
            f"{r.compute_cycles:,} {'==' if same else '!='} | {case['wall_s']:.2f} s | {ours * 1e6:.0f} us | "
            f"{case['wall_s'] / ours:,.0f}x |"
        )
    print("SCALE-Sim 3.0.0 vs specsim, 32x32 array, GEMM mode, ideal memory")
    print("| dataflow | M x N x K | SCALE-Sim cycles | specsim cycles | SCALE-Sim time | specsim time | speed-up |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"total: SCALE-Sim {total_ref:.1f} s, specsim {total_ours * 1e3:.2f} ms, {total_ref / total_ours:,.0f}x faster; "
        f"{'all cycles identical' if not mismatches else f'{mismatches} MISMATCHES'}"
    )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
