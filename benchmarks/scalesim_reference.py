#!/usr/bin/env python3
"""Generate SCALE-Sim v3.0.0 reference cycle counts for GEMMs (test data for specsim).

Standalone: run it with the *SCALE-Sim venv's* interpreter, not specsim's.  It
does not import specsim.

    python3 -m venv /work/scalesim-venv
    /work/scalesim-venv/bin/pip install 'numpy<2' scalesim==3.0.0
    /work/scalesim-venv/bin/python benchmarks/scalesim_reference.py \
        --out tests/data/scalesim_cycles.json

Options: ``--cases cases.json`` (a JSON list of objects with keys rows, cols,
dataflow, m, n, k) replaces the built-in default list; ``--bw-mode user``
switches SCALE-Sim from CALC to USER interface bandwidth (see below).

How SCALE-Sim is driven
-----------------------
Each case runs in a fresh child process (the same script with ``--_worker``),
inside a temporary directory that is deleted afterwards.  The child writes an
INI config, a GEMM topology CSV and an empty layout CSV.  It then calls
``scalesim.scale_sim.scalesim(save_disk_space=True, verbose=False,
input_type_gemm=True).run_scale()`` with stdout/stderr sent to /dev/null, and
parses ``<run>/COMPUTE_REPORT.csv``.  ``wall_s`` is the time of the
constructor plus ``run_scale()`` only; it leaves out interpreter start-up and
imports.  ``peak_rss_mb`` is the child's peak RSS, which includes numpy and
SCALE-Sim's imports.  The cases run one after another and never in parallel.

* Array: ``ArrayHeight`` = R = ``rows``, ``ArrayWidth`` = C = ``cols``.
* Bandwidth: ``InterfaceBandwidth = CALC`` by default.  That is SCALE-Sim's
  "estimate bandwidth" mode, in which SRAM reads are stall-free by
  construction (read_buffer_estimate_bw), and the OFMAP drain bandwidth is
  ``ArrayWidth`` words/cycle.  So "Total Cycles" is the pure compute/dataflow
  cycle count, and "Stall Cycles" is 0 in every case (the script records it,
  so you can check).  USER mode with ample bandwidth gives the same "Total
  Cycles".  Only "Total Cycles (incl. prefetch)" depends on the mode and the
  SRAM sizes.  That column is DRAM-trace based (ofmap DRAM stop minus first
  DRAM read), so do not use it as a compute reference.
* SRAM sizes are SCALE-Sim's stock ``configs/scale.cfg`` values (6144/6144/2048
  kB).  They do not change "Total Cycles".

GEMM naming (this file == specsim == SCALE-Sim topology CSV)
------------------------------------------------------------
out[M x N] = A[M x K] @ B[K x N].  M = output rows (tokens), N = output
columns, K = reduction dim.  The SCALE-Sim GEMM topology row is
``"Layer, M, N, K,"``, in the SAME order and meaning.  ``topology_utils.
load_arrays_gemm`` turns it into a conv layer with ifmap M x K, filter 1 x K,
1 channel and N filters.  So the IFMAP operand matrix is A (M x K), the
FILTER operand matrix is B (K x N), and the OFMAP matrix is M x N.  Note: each
CSV row needs a trailing comma, because SCALE-Sim drops the last
comma-separated field.

Where each dimension goes, per dataflow (SCALE-Sim's systolic_compute_*.py):
  ws: Sr = K on rows (R), Sc = N on cols (C), T = M streams in time
  os: Sr = M on rows (R), Sc = N on cols (C), T = K streams in time
  is: Sr = K on rows (R), Sc = M on cols (C), T = N streams in time

Closed forms ("Total Cycles" in COMPUTE_REPORT.csv).  They match every case of
the default list exactly:
  ws: ceil(K/R) * ceil(N/C) * (2R + C + M - 2) - 1
  os: ceil(M/R) * ceil(N/C) * ( R + C + K - 2) - 1
  is: ceil(K/R) * ceil(M/C) * (2R + C + N - 2) - 1
The per-fold term is the number of demand-matrix lines per fold.
 * ws/is: a prefix of R lines loads the stationary operand, then T streamed
   lines, then C-1 drain lines, then R-1 lines of skew.
 * os: T streamed lines, then C-1 lines, then R-1 lines of skew.  There is no
   separate preload.
Folds run back to back with no overlap.  "Total Cycles" is the 0-based cycle
index of the last OFMAP demand line, hence the trailing -1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

SCALESIM_VERSION = "3.0.0"

DATAFLOWS = ("ws", "os", "is")

# SCALE-Sim 3.0.0 INI.  All sections/keys below are read unconditionally by
# scale_config.read_conf_file().  There is deliberately no [network_presets]
# section: with it, 3.0.0 looks for TopologyCsvLoc in the wrong section.
CONFIG_TEMPLATE = """\
[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {ifmap_kb}
FilterSramSzkB = {filter_kb}
OfmapSramSzkB = {ofmap_kb}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = {bandwidth}
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = {bandwidth}
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = {bandwidth}
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = {bw_mode}
UseRamulatorTrace = False
"""

# COMPUTE_REPORT.csv header -> JSON key
REPORT_KEYS = {
    "Total Cycles (incl. prefetch)": "total_cycles_incl_prefetch",
    "Total Cycles": "total_cycles",
    "Stall Cycles": "stall_cycles",
    "Overall Util %": "overall_util_pct",
    "Mapping Efficiency %": "mapping_efficiency_pct",
    "Compute Util %": "compute_util_pct",
}
INT_KEYS = {"total_cycles_incl_prefetch", "total_cycles", "stall_cycles"}


# ----------------------------------------------------------------------------
# Default case list
# ----------------------------------------------------------------------------
_BIG = [(1, 1024, 1024), (5, 1024, 1024), (64, 1024, 1024)]
_ARRAY_SHAPES = {
    (32, 32): [(1, 100, 70), (3, 37, 53), (7, 129, 65), (33, 33, 33), (1, 1, 1), (64, 64, 64), (100, 20, 300)] + _BIG,
    (8, 8): [(1, 1, 1), (2, 3, 5), (17, 40, 33), (64, 64, 64)],
    (16, 16): [(1, 100, 70), (33, 33, 33), (100, 20, 300), (7, 129, 65)],
    (8, 16): [(3, 37, 53), (17, 40, 33), (9, 200, 17), (2, 3, 5)],
    (16, 8): [(3, 37, 53), (17, 40, 33), (9, 200, 17), (2, 3, 5)],
    (4, 32): [(1, 100, 70), (7, 129, 65), (100, 20, 300), (33, 33, 33)],
}


def default_cases() -> list[dict]:
    cases = []
    for (rows, cols), shapes in _ARRAY_SHAPES.items():
        for dataflow in DATAFLOWS:
            for m, n, k in shapes:
                cases.append(dict(rows=rows, cols=cols, dataflow=dataflow, m=m, n=n, k=k))
    return cases


def closed_form_cycles(rows: int, cols: int, dataflow: str, m: int, n: int, k: int) -> int:
    """Closed form for SCALE-Sim 3.0.0 'Total Cycles' (see module docstring)."""
    R, C = rows, cols
    if dataflow == "ws":
        return math.ceil(k / R) * math.ceil(n / C) * (2 * R + C + m - 2) - 1
    if dataflow == "os":
        return math.ceil(m / R) * math.ceil(n / C) * (R + C + k - 2) - 1
    if dataflow == "is":
        return math.ceil(k / R) * math.ceil(m / C) * (2 * R + C + n - 2) - 1
    raise ValueError(dataflow)


# ----------------------------------------------------------------------------
# Worker: one SCALE-Sim run (executed in a child process)
# ----------------------------------------------------------------------------
@contextlib.contextmanager
def _silenced():
    """Redirect Python- and fd-level stdout/stderr to /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with open(os.devnull, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        os.close(devnull)


def _parse_compute_report(path: str) -> dict:
    with open(path) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    header = [h.strip() for h in lines[0].split(",") if h.strip()]
    values = [v.strip() for v in lines[1].split(",")][: len(header)]
    row = dict(zip(header, values))
    out = {}
    for col, key in REPORT_KEYS.items():
        if col in row:
            out[key] = int(float(row[col])) if key in INT_KEYS else float(row[col])
    return out


def run_one(case: dict, workdir: str, bw_mode: str, sram_kb: tuple[int, int, int], bandwidth: int) -> dict:
    from scalesim.scale_sim import scalesim  # imported here: only the venv has it

    cfg_path = os.path.join(workdir, "scalesim.cfg")
    topo_path = os.path.join(workdir, "gemm.csv")
    layout_path = os.path.join(workdir, "layout.csv")
    out_dir = os.path.join(workdir, "out")
    run_name = "run"
    with open(cfg_path, "w") as f:
        f.write(
            CONFIG_TEMPLATE.format(
                run_name=run_name,
                rows=case["rows"],
                cols=case["cols"],
                dataflow=case["dataflow"],
                bw_mode=bw_mode.upper(),
                bandwidth=bandwidth,
                ifmap_kb=sram_kb[0],
                filter_kb=sram_kb[1],
                ofmap_kb=sram_kb[2],
            )
        )
    with open(topo_path, "w") as f:
        # trailing comma required: SCALE-Sim drops the last CSV field
        f.write("Layer, M, N, K,\n")
        f.write(f"gemm, {case['m']}, {case['n']}, {case['k']},\n")
    with open(layout_path, "w") as f:
        # scalesim() always parses a layout file; unused unless *CustomLayout = True
        f.write("Layer name,\n")

    with _silenced():
        t0 = time.perf_counter()
        sim = scalesim(
            save_disk_space=True,
            verbose=False,
            config=cfg_path,
            topology=topo_path,
            layout=layout_path,
            input_type_gemm=True,
        )
        sim.run_scale(top_path=out_dir)
        wall = time.perf_counter() - t0
    res = _parse_compute_report(os.path.join(out_dir, run_name, "COMPUTE_REPORT.csv"))
    res["wall_s"] = round(wall, 3)
    return res


def _worker_main(args) -> int:
    case = json.loads(args.case_json)
    res = run_one(case, args.workdir, args.bw_mode, tuple(args.sram_kb), args.bandwidth)
    with open(os.path.join(args.workdir, "result.json"), "w") as f:
        json.dump(res, f)
    return 0


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------
def run_case_in_child(case: dict, args) -> dict:
    workdir = tempfile.mkdtemp(prefix="scalesim_ref_")
    try:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--_worker",
            "--workdir",
            workdir,
            "--case-json",
            json.dumps(case),
            "--bw-mode",
            args.bw_mode,
            "--bandwidth",
            str(args.bandwidth),
            "--sram-kb",
            *[str(x) for x in args.sram_kb],
        ]
        log_path = os.path.join(workdir, "worker.log")
        with open(log_path, "w") as log_f:  # a file, not a pipe: no deadlock on big output
            proc = subprocess.Popen(cmd, stdout=log_f, stderr=subprocess.STDOUT)
            # wait4 gives this child's own rusage (peak RSS)
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        result_path = os.path.join(workdir, "result.json")
        if proc.returncode != 0 or not os.path.exists(result_path):
            with open(log_path) as f:
                tail = f.read()[-4000:]
            raise RuntimeError(f"SCALE-Sim worker failed for {case} (rc={proc.returncode}):\n{tail}")
        with open(result_path) as f:
            res = json.load(f)
        res["peak_rss_mb"] = round(rusage.ru_maxrss / 1024.0, 1)  # Linux: KiB
        return res
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _load_cases(path: str | None) -> list[dict]:
    if path is None:
        return default_cases()
    with open(path) as f:
        raw = json.load(f)
    if isinstance(raw, dict) and "cases" in raw:
        raw = raw["cases"]
    cases = []
    for c in raw:
        df = str(c["dataflow"]).lower()
        if df not in DATAFLOWS:
            raise ValueError(f"bad dataflow in {c}")
        cases.append(
            dict(rows=int(c["rows"]), cols=int(c["cols"]), dataflow=df, m=int(c["m"]), n=int(c["n"]), k=int(c["k"]))
        )
    return cases


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", help="JSON list of {rows, cols, dataflow, m, n, k} (default: built-in list)")
    p.add_argument("--out", help="output JSON path (default: stdout)")
    p.add_argument(
        "--bw-mode",
        choices=["calc", "user"],
        default="calc",
        help="SCALE-Sim InterfaceBandwidth (default calc = stall-free estimate mode)",
    )
    p.add_argument(
        "--bandwidth",
        type=int,
        default=10,
        help="Bandwidth / SRAM bank bandwidth (words/cycle); only matters in user mode",
    )
    p.add_argument("--sram-kb", type=int, nargs=3, default=[6144, 6144, 2048], metavar=("IFMAP", "FILTER", "OFMAP"))
    p.add_argument("--no-check", action="store_true", help="do not compare with the closed forms")
    # internal
    p.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--case-json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._worker:
        return _worker_main(args)

    import numpy  # noqa: F401  (just for the version record)

    try:
        from importlib.metadata import version

        ss_version = version("scalesim")
    except Exception:  # pragma: no cover
        ss_version = "unknown"
    if ss_version != SCALESIM_VERSION:
        print(f"WARNING: scalesim {ss_version} installed, reference data expects {SCALESIM_VERSION}", file=sys.stderr)

    cases = _load_cases(args.cases)
    log = sys.stdout if args.out else sys.stderr  # keep stdout clean for JSON
    results = []
    mismatches = 0
    t_start = time.perf_counter()
    for i, case in enumerate(cases, 1):
        res = run_case_in_child(case, args)
        entry = dict(case)
        entry.update(res)
        results.append(entry)
        tag = ""
        if not args.no_check:
            cf = closed_form_cycles(**case)
            if cf != entry["total_cycles"]:
                mismatches += 1
                tag = f"  MISMATCH closed_form={cf}"
        print(
            f"[{i:3d}/{len(cases)}] {case['dataflow']} {case['rows']}x{case['cols']} "
            f"m={case['m']} n={case['n']} k={case['k']}: total={entry['total_cycles']} "
            f"stall={entry.get('stall_cycles')} wall={entry['wall_s']:.2f}s "
            f"rss={entry['peak_rss_mb']:.0f}MB{tag}",
            file=log,
            flush=True,
        )

    doc = {
        "scalesim_version": ss_version,
        "numpy_version": numpy.__version__,
        "python_version": sys.version.split()[0],
        "generator": "benchmarks/scalesim_reference.py",
        "settings": {
            "interface_bandwidth": args.bw_mode.upper(),
            "bandwidth": args.bandwidth,
            "sram_kb": {"ifmap": args.sram_kb[0], "filter": args.sram_kb[1], "ofmap": args.sram_kb[2]},
            "gemm_convention": "out[MxN] = A[MxK] @ B[KxN]; SCALE-Sim topology row "
            "'Layer, M, N, K,' (same M,N,K); rows=ArrayHeight, "
            "cols=ArrayWidth",
        },
        "closed_forms": {
            "ws": "ceil(K/R)*ceil(N/C)*(2R+C+M-2) - 1",
            "os": "ceil(M/R)*ceil(N/C)*(R+C+K-2) - 1",
            "is": "ceil(K/R)*ceil(M/C)*(2R+C+N-2) - 1",
        },
        "cases": results,
    }
    text = json.dumps(doc, indent=1) + "\n"
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {len(results)} cases to {args.out} ({time.perf_counter() - t_start:.0f}s total)", flush=True)
    else:
        sys.stdout.write(text)
    if not args.no_check:
        print(f"closed-form check: {len(results) - mismatches}/{len(results)} match", file=log, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
