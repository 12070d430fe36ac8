"""One GEMM on a PE array (``specsim gemm``): cycles, traffic, energy and utilization of a single operator."""

from __future__ import annotations

from specsim.engine import simulate
from specsim.hardware.config import load_hardware
from specsim.hardware.energy import energy_breakdown, energy_table_for, group_breakdown
from specsim.hardware.ops import gemm_table


def gemm_report(
    config: str,
    m: int,
    n: int,
    k: int,
    mode: str = "fp16",
    *,
    rows: int | None = None,
    cols: int | None = None,
    dataflow: str | None = None,
    ideal_memory: bool = False,
    scalesim_compatible: bool = False,
) -> dict:
    """Simulate out[M,N] = A[M,K] @ W[K,N] in PE mode ``mode`` on hardware ``config`` (a path or a shipped
    name; ``rows``/``cols``/``dataflow`` override its array). Cycles at the config's clock, bytes, pJ,
    seconds; the object ``specsim gemm --json`` prints."""
    hw = load_hardware(config)
    if rows or cols or dataflow:
        hw = hw.with_array(rows or hw.array.rows, cols or hw.array.cols, dataflow)
    hw.mode(mode)
    table = energy_table_for(hw)
    result = simulate(
        hw,
        gemm_table(m, n, k, mode, tuple(hw.modes)),
        ideal_memory=ideal_memory,
        scalesim_compatible=scalesim_compatible,
    )
    actions = result.actions()
    energy = energy_breakdown(actions, table, hw)
    peak = int(result.mapping.peak_macs_per_cycle[0])
    macs = int(result.mapping.macs[0])
    return {
        "config": hw.path,
        "rows": hw.array.rows,
        "cols": hw.array.cols,
        "dataflow": hw.array.dataflow,
        "mode": mode,
        "m": m,
        "n": n,
        "k": k,
        "ideal_memory": ideal_memory,
        "scalesim_compatible": scalesim_compatible,
        "compute_cycles": result.compute_cycles,
        "total_cycles": result.total_cycles,
        "stall_cycles": result.stall_cycles,
        "stall_cycles_by_cause": result.stalls_by_cause(),
        "folds": int(result.mapping.folds[0]),
        "macs": macs,
        "peak_macs_per_cycle": peak,
        "utilization": macs / (result.total_cycles * peak) if result.total_cycles else 0.0,
        "dram_bytes": actions.dram_read_bytes + actions.dram_write_bytes,
        "dram_read_bytes": actions.dram_read_bytes,
        "dram_write_bytes": actions.dram_write_bytes,
        "compulsory_dram_bytes": int(result.mapping.compulsory_bytes[0]),
        "sram_bytes": sum(actions.sram_read_bytes.values()) + sum(actions.sram_write_bytes.values()),
        "energy_pj": sum(energy.values()),
        "energy_breakdown_pj": group_breakdown(energy),
        "latency_s": result.total_cycles / (hw.clock_ghz * 1e9),
        "energy_table": table.path,
    }
