"""SimPy reference model of the engine: the same semantics as :mod:`specsim.engine.core`, as processes.

Readable and slow; the tests replay random small workloads through both and require identical
cycles, stalls and DRAM bytes. Hardware units are processes:

* ``dma``: walks the static command list in order; a read waits until the compute that frees its
  buffer slot is done, a write-back until its operator's last segment is done; each transfer holds
  the DMA for ``ceil(rounded bytes / bytes per cycle)`` cycles and starts an SRAM fill;
* ``fill``: ``latency`` after its transfer starts, takes the buffer's write port for ``fill`` cycles
  but not less than until the data have arrived;
* ``compute``: runs segments in program order; each waits for its fill and, on a mode change, the
  mode switch, then computes for ``max(compute share, SRAM-read share)`` cycles.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from specsim.engine import SimResult
from specsim.engine.core import ST_BUFFER, ST_DRAIN, ST_DRAM, ST_FILL, ST_READ, ST_SWITCH, STALL_CAUSES
from specsim.hardware.config import BUFFER_NAMES, HardwareConfig
from specsim.hardware.mapping import BUF_ACTIVATIONS, UNIT_ARRAY, map_ops
from specsim.hardware.ops import OpTable


def _share(total: int, j: int, n: int) -> int:
    """Part ``j`` of ``n`` equal parts of ``total``, the remainder one each on the last parts."""
    base, rem = divmod(total, n)
    return base + (1 if j >= n - rem else 0)


def simulate_reference(
    hw: HardwareConfig, ops: OpTable, *, ideal_memory: bool = False, scalesim_compatible: bool = False
) -> SimResult:
    """Replay ``ops`` with the SimPy model; returns the same :class:`SimResult` as :func:`simulate`."""
    m = map_ops(hw, ops, scalesim_compatible=scalesim_compatible)
    n_ops = len(m)
    bpc = 0.0 if ideal_memory else float(hw.dram_bytes_per_cycle)
    lat = 0 if ideal_memory else hw.dram_latency_cycles
    burst = hw.dram.burst_bytes

    # segments (op, part) and reads with the segment whose compute frees their slot
    segments: list[tuple[int, int]] = []
    loads: list[dict] = []
    history: dict[int, list[int]] = {}
    last_seg = []
    for i in range(n_ops):
        parts = max(int(m.tiles[i]), 1)
        buf = int(m.stream_buffer[i]) if m.stream_buffer[i] >= 0 else BUF_ACTIVATIONS
        for j in range(parts):
            s = len(segments)
            segments.append((i, j))
            if m.load_bytes[i] > 0:
                used = history.setdefault(buf, [])
                slots = hw.buffers.get(BUFFER_NAMES[buf]).slots
                frees = used[-slots] if len(used) >= slots else -1
                used.append(s)
                loads.append({"seg": s, "op": i, "part": j, "parts": parts, "buf": buf, "frees": frees})
        last_seg.append(len(segments) - 1)
    seg_load = {ld["seg"]: g for g, ld in enumerate(loads)}

    # static command order: reads are issued when the compute freeing their slot is issued (in
    # program order), write-backs after their op's last segment; write-backs first on ties
    commands = []
    issue = -1
    for g, ld in enumerate(loads):
        issue = max(issue, ld["frees"])
        commands.append((issue, 1, g, "read", g))
    for i in range(n_ops):
        if m.write_bytes[i] > 0:
            commands.append((last_seg[i], 0, i, "write", i))
    commands.sort()

    env = simpy.Environment()
    ports = [simpy.Resource(env, capacity=1) for _ in BUFFER_NAMES]
    compute_done = [env.event() for _ in segments]
    fill_done = [env.event() for _ in loads]
    fill_cause = [0] * len(loads)
    op_start = np.full(n_ops, np.iinfo(np.int64).max, dtype=np.int64)
    op_end = np.zeros(n_ops, dtype=np.int64)
    stalls = np.zeros((n_ops, len(STALL_CAUSES)), dtype=np.int64)
    dram_read = np.zeros(n_ops, dtype=np.int64)
    dram_write = np.zeros(n_ops, dtype=np.int64)
    switches = np.zeros(n_ops, dtype=np.int64)

    def transfer(nbytes: int) -> tuple[int, int]:
        if nbytes <= 0 or bpc <= 0:
            return nbytes, 0
        rounded = -(-nbytes // burst) * burst
        return rounded, math.ceil(rounded / bpc)

    def fill(g: int, dma_start: int, arrival: int, slot_wait: bool):
        ld = loads[g]
        yield env.timeout(lat)
        with ports[ld["buf"]].request() as req:
            yield req
            cycles = 0 if ideal_memory else _share(int(m.fill_cycles[ld["op"]]), ld["part"], ld["parts"])
            f_start = env.now
            yield env.timeout(max(cycles, arrival - f_start))
        fill_cause[g] = ST_BUFFER if slot_wait else (ST_DRAM if arrival >= f_start + cycles else ST_FILL)
        fill_done[g].succeed()

    def dma():
        for _, _, _, kind, idx in commands:
            before = env.now
            need = last_seg[idx] if kind == "write" else loads[idx]["frees"]
            if need >= 0:
                yield compute_done[need]
            start = env.now
            if kind == "write":
                nbytes, cycles = transfer(int(m.write_bytes[idx]))
                dram_write[idx] += nbytes
                yield env.timeout(cycles)
                op_end[idx] = max(op_end[idx], env.now)
            else:
                ld = loads[idx]
                nbytes, cycles = transfer(_share(int(m.load_bytes[ld["op"]]), ld["part"], ld["parts"]))
                dram_read[ld["op"]] += nbytes
                op_start[ld["op"]] = min(op_start[ld["op"]], start)
                env.process(fill(idx, start, start + cycles + lat, start > before))
                yield env.timeout(cycles)

    def compute():
        mode = -1
        group = hw.switch_groups(ops.modes)  # modes of one PE configuration do not switch
        for s, (i, j) in enumerate(segments):
            t0 = env.now
            parts = max(int(m.tiles[i]), 1)
            waits = []
            switch = 0
            if m.unit[i] == UNIT_ARRAY:
                if mode >= 0 and group[m.mode[i]] != mode:
                    switch = hw.array.mode_switch_cycles
                    switches[i] += 1
                    waits.append(env.timeout(switch))
                mode = int(group[m.mode[i]])
            g = seg_load.get(s)
            if g is not None:
                waits.append(fill_done[g])
            if waits:
                yield env.all_of(waits)
            gap = env.now - t0
            switch_part = min(gap, switch)
            stalls[i, ST_SWITCH] += switch_part
            if gap > switch_part:
                stalls[i, fill_cause[g]] += gap - switch_part
            op_start[i] = min(op_start[i], t0 if switch_part > 0 else env.now)
            work = _share(int(m.compute_cycles[i]), j, parts)
            reads = 0 if ideal_memory else _share(int(m.sram_read_cycles[i]), j, parts)
            stalls[i, ST_READ] += max(work, reads) - work
            yield env.timeout(max(work, reads))
            op_end[i] = max(op_end[i], env.now)
            compute_done[s].succeed()
        return env.now

    env.process(dma())
    compute_proc = env.process(compute())
    env.run()
    compute_free = compute_proc.value
    total = int(env.now)
    if n_ops:
        stalls[n_ops - 1, ST_DRAIN] += total - compute_free
    return SimResult(ops, m, op_start, op_end, stalls, dram_read, dram_write, switches, total)
