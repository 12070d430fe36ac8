"""The discrete-event core, compiled with Numba: tile-level replay of a mapped operator list.

Semantics (the SimPy model in :mod:`specsim.engine.reference` states the same in process form):

* Each operator is cut into ``tiles`` segments (one buffer slot of streamed bytes each, at least one
  segment). A segment with a load first needs its DRAM read, then its SRAM fill, then compute.
* **DMA engine**: one in-order queue striped over all DRAM channels, ``bytes_per_cycle`` wide.
  A read of ``b`` bytes (rounded up to bursts) occupies it ``ceil(b / bytes_per_cycle)`` cycles;
  its data arrive ``latency`` cycles after the transfer (latency is pipelined). Output write-backs
  use the same queue (bandwidth is shared by time multiplexing).
* **Buffer slots**: a read into a buffer with ``slots`` slots (2 when double-buffered) may start
  only when the segment that held that slot ``slots`` reads earlier has finished computing.
* **SRAM fill**: on the buffer's write port, from ``latency`` after the transfer starts, taking
  ``fill`` cycles but never ending before the data arrive.
* **Compute**: one compute pipeline runs segments in program order (array and vector unit; a
  segment starts after the previous one ends, its fill is done and, on a mode change, the mode
  switch is done). A segment lasts ``max(compute share, SRAM-read share)`` cycles.
* **Command order** (static, as a compiler would emit descriptors): a read is issued once the
  compute that frees its slot is issued, reads stay in program order, an operator's write-back is
  issued after its last segment computes; at the same issue point write-backs go first.

Stall cycles of the compute pipeline are attributed to one cause each (``STALL_CAUSES``); the tail
after the last compute (write-backs draining) is ``drain``. Nothing per cycle is stored: per
operator start/end, stalls and DRAM bytes only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

STALL_CAUSES = ("dram", "sram_fill", "buffer", "sram_read", "mode_switch", "drain")
ST_DRAM, ST_FILL, ST_BUFFER, ST_READ, ST_SWITCH, ST_DRAIN = range(6)
N_BUFFERS = 4
BUF_ACTIVATIONS = 1


@njit(cache=True, inline="always")
def _part(base, rem, j, n):
    """Part ``j`` of ``n`` equal integer parts of a total: ``base = total // n``, the remainder
    ``rem = total % n`` one each on the last parts (parts sum exactly to the total; precomputed per
    op, so no division per tile)."""
    return base + (1 if j >= n - rem else 0)


@njit(cache=True, inline="always")
def _transfer_cycles(nbytes, burst, bytes_per_cycle):
    if nbytes <= 0 or bytes_per_cycle <= 0.0:
        return 0, 0
    rounded = -(-nbytes // burst) * burst
    return rounded, np.int64(np.ceil(rounded / bytes_per_cycle))


@njit(cache=True)
def replay(unit, mode, tiles, stream_buffer, load_bytes, write_bytes, fill_cycles, compute_cycles,
           sram_read_cycles, slots, bytes_per_cycle, latency, burst, switch_cycles, ideal):
    """Replay mapped operators; returns per-op (start, end, stalls[op, cause], dram_read, dram_write,
    mode_switches) and the total cycles. ``ideal``: memory is free (no transfer, fill or read time)."""
    n_ops = unit.shape[0]
    # ---- segments and loads -----------------------------------------------------------------------
    n_seg = 0
    n_load = 0
    for i in range(n_ops):
        n_seg += max(tiles[i], 1)
        if load_bytes[i] > 0:
            n_load += max(tiles[i], 1)
    seg_op = np.empty(n_seg, np.int64)
    seg_part = np.empty(n_seg, np.int64)
    seg_load = np.full(n_seg, -1, np.int64)
    load_seg = np.empty(n_load, np.int64)
    load_slot_seg = np.full(n_load, -1, np.int64)
    load_issue = np.empty(n_load, np.int64)
    last_seg = np.empty(n_ops, np.int64)
    ring = np.full((N_BUFFERS, 8), -1, np.int64)   # last segments per buffer (slots <= 8)
    ring_pos = np.zeros(N_BUFFERS, np.int64)
    s = 0
    g = 0
    issue = -1
    for i in range(n_ops):
        parts = max(tiles[i], 1)
        buf = stream_buffer[i] if stream_buffer[i] >= 0 else BUF_ACTIVATIONS
        for j in range(parts):
            seg_op[s] = i
            seg_part[s] = j
            if load_bytes[i] > 0:
                seg_load[s] = g
                load_seg[g] = s
                k = ring_pos[buf] % slots[buf]
                load_slot_seg[g] = ring[buf, k]
                ring[buf, k] = s
                ring_pos[buf] += 1
                if load_slot_seg[g] > issue:
                    issue = load_slot_seg[g]
                load_issue[g] = issue
                g += 1
            s += 1
        last_seg[i] = s - 1

    # per-op equal shares (base, remainder) of load bytes, fill, compute and SRAM-read cycles
    split = np.empty((n_ops, 4, 2), np.int64)
    for i in range(n_ops):
        parts = max(tiles[i], 1)
        split[i, 0, 0], split[i, 0, 1] = load_bytes[i] // parts, load_bytes[i] % parts
        split[i, 1, 0], split[i, 1, 1] = fill_cycles[i] // parts, fill_cycles[i] % parts
        split[i, 2, 0], split[i, 2, 1] = compute_cycles[i] // parts, compute_cycles[i] % parts
        split[i, 3, 0], split[i, 3, 1] = sram_read_cycles[i] // parts, sram_read_cycles[i] % parts

    # ---- state ------------------------------------------------------------------------------------
    op_start = np.full(n_ops, np.iinfo(np.int64).max, np.int64)
    op_end = np.zeros(n_ops, np.int64)
    stalls = np.zeros((n_ops, 6), np.int64)
    dram_read = np.zeros(n_ops, np.int64)
    dram_write = np.zeros(n_ops, np.int64)
    switches = np.zeros(n_ops, np.int64)
    fill_end = np.zeros(n_load, np.int64)
    load_cause = np.zeros(n_load, np.int64)
    compute_end = np.zeros(n_seg, np.int64)
    port_free = np.zeros(N_BUFFERS, np.int64)
    dma_free = np.int64(0)
    compute_free = np.int64(0)
    cur_mode = -1
    next_seg = 0
    bpc = 0.0 if ideal else bytes_per_cycle
    lat = 0 if ideal else latency

    next_load = 0
    next_write = 0
    while True:
        # the next DMA command in issue order: write-backs before reads at the same issue point
        while next_write < n_ops and write_bytes[next_write] <= 0:
            next_write += 1
        have_load = next_load < n_load
        have_write = next_write < n_ops
        if not have_load and not have_write:
            break
        take_write = have_write and (not have_load or last_seg[next_write] <= load_issue[next_load])
        need = last_seg[next_write] if take_write else load_slot_seg[next_load]
        # run compute up to the segment this command waits for
        while next_seg <= need:
            compute_free, cur_mode = _compute(next_seg, seg_op, seg_part, seg_load, unit, mode, tiles,
                                              split, fill_end, load_cause,
                                              compute_free, cur_mode, switch_cycles, ideal, op_start,
                                              op_end, stalls, switches, compute_end)
            next_seg += 1
        ready = compute_end[need] if need >= 0 else np.int64(0)
        start = max(dma_free, ready)
        if take_write:
            i = next_write
            nbytes, cycles = _transfer_cycles(write_bytes[i], burst, bpc)
            dram_write[i] += write_bytes[i] if nbytes == 0 else nbytes
            dma_free = start + cycles
            op_end[i] = max(op_end[i], dma_free)
            next_write += 1
        else:
            gl = next_load
            sg = load_seg[gl]
            i = seg_op[sg]
            parts = max(tiles[i], 1)
            share = _part(split[i, 0, 0], split[i, 0, 1], seg_part[sg], parts)
            nbytes, cycles = _transfer_cycles(share, burst, bpc)
            dram_read[i] += share if nbytes == 0 else nbytes
            slot_wait = ready > dma_free
            dma_free = start + cycles
            buf = stream_buffer[i] if stream_buffer[i] >= 0 else BUF_ACTIVATIONS
            fill = 0 if ideal else _part(split[i, 1, 0], split[i, 1, 1], seg_part[sg], parts)
            f_start = max(start + lat, port_free[buf])
            arrival = dma_free + lat
            f_end = max(f_start + fill, arrival)
            port_free[buf] = f_end
            fill_end[gl] = f_end
            load_cause[gl] = ST_BUFFER if slot_wait else (ST_DRAM if arrival >= f_start + fill else ST_FILL)
            op_start[i] = min(op_start[i], start)
            next_load += 1
    while next_seg < n_seg:
        compute_free, cur_mode = _compute(next_seg, seg_op, seg_part, seg_load, unit, mode, tiles,
                                          split, fill_end, load_cause,
                                          compute_free, cur_mode, switch_cycles, ideal, op_start,
                                          op_end, stalls, switches, compute_end)
        next_seg += 1
    total = max(compute_free, dma_free)
    if n_ops > 0:
        stalls[n_ops - 1, ST_DRAIN] += total - compute_free
    return op_start, op_end, stalls, dram_read, dram_write, switches, total


@njit(cache=True, inline="always")
def _compute(sg, seg_op, seg_part, seg_load, unit, mode, tiles, split, fill_end, load_cause, compute_free,
             cur_mode, switch_cycles, ideal, op_start, op_end, stalls, switches, compute_end):
    i = seg_op[sg]
    parts = max(tiles[i], 1)
    t0 = compute_free
    ready = t0
    if unit[i] == 0:
        if cur_mode >= 0 and mode[i] != cur_mode:
            ready = t0 + switch_cycles
            switches[i] += 1
        cur_mode = mode[i]
    gl = seg_load[sg]
    data = fill_end[gl] if gl >= 0 else np.int64(0)
    start = max(ready, data)
    gap = start - t0
    switch_part = min(gap, ready - t0)
    stalls[i, ST_SWITCH] += switch_part
    if gap > switch_part:
        stalls[i, load_cause[gl]] += gap - switch_part
    work = _part(split[i, 2, 0], split[i, 2, 1], seg_part[sg], parts)
    reads = 0 if ideal else _part(split[i, 3, 0], split[i, 3, 1], seg_part[sg], parts)
    duration = max(work, reads)
    stalls[i, ST_READ] += duration - work
    end = start + duration
    compute_end[sg] = end
    op_start[i] = min(op_start[i], t0 if switch_part > 0 else start)
    op_end[i] = max(op_end[i], end)
    return end, cur_mode
