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
after the last compute (write-backs draining) is ``drain``. Nothing per cycle and nothing per tile is
stored: segments are visited as (operator, part) pointers, reads in flight live in a small ring
(a buffer holds at most ``slots`` of them), and per operator only start/end, stalls and DRAM bytes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

STALL_CAUSES = ("dram", "sram_fill", "buffer", "sram_read", "mode_switch", "drain")
ST_DRAM, ST_FILL, ST_BUFFER, ST_READ, ST_SWITCH, ST_DRAIN = range(6)
N_BUFFERS = 4
BUF_ACTIVATIONS = 1
MAX_SLOTS = 8                 # slots per buffer the rings hold (hardware config check)
IN_FLIGHT = 64                # ring of reads issued but not yet computed (>= N_BUFFERS * MAX_SLOTS)


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
           sram_read_cycles, slots, bytes_per_cycle, latency, burst, switch_cycles, ideal, fast_forward):
    """Replay mapped operators; returns per-op (start, end, stalls[op, cause], dram_read, dram_write,
    mode_switches) and the total cycles. ``ideal``: memory is free (no transfer, fill or read time).

    ``fast_forward``: skip the steady state of long runs of equal tiles exactly. The model is a max-plus
    system (every time is a max of sums of earlier times and constants), so it is shift-invariant: when
    one step (compute one tile, issue the read that reuses its slot) leaves the whole state -- DMA,
    compute and write-port free times and the fill times of the reads in flight -- shifted by the same
    delta as the step before, and the next ``m`` steps have the same inputs (same op, equal shares, no
    write-back due), each of them shifts the state by delta again. They are applied in one go, with the
    stall and DRAM counters advanced by ``m`` times the last step's increments."""
    n_ops = unit.shape[0]
    # ---- layout: segment s of op i is part s - first_seg[i]; its read (if any) is first_load[i] + part
    first_seg = np.zeros(n_ops + 1, np.int64)
    first_load = np.zeros(n_ops + 1, np.int64)
    split = np.empty((n_ops, 4, 2), np.int64)   # per-op equal shares (base, remainder): bytes, fill, compute, reads
    for i in range(n_ops):
        parts = max(tiles[i], 1)
        first_seg[i + 1] = first_seg[i] + parts
        first_load[i + 1] = first_load[i] + (parts if load_bytes[i] > 0 else 0)
        split[i, 0, 0], split[i, 0, 1] = load_bytes[i] // parts, load_bytes[i] % parts
        split[i, 1, 0], split[i, 1, 1] = fill_cycles[i] // parts, fill_cycles[i] % parts
        split[i, 2, 0], split[i, 2, 1] = compute_cycles[i] // parts, compute_cycles[i] % parts
        split[i, 3, 0], split[i, 3, 1] = sram_read_cycles[i] // parts, sram_read_cycles[i] % parts
    n_seg = first_seg[n_ops]
    n_load = first_load[n_ops]

    # ---- state ------------------------------------------------------------------------------------
    op_start = np.full(n_ops, np.iinfo(np.int64).max, np.int64)
    op_end = np.zeros(n_ops, np.int64)
    op_compute_end = np.zeros(n_ops, np.int64)
    stalls = np.zeros((n_ops, 6), np.int64)
    dram_read = np.zeros(n_ops, np.int64)
    dram_write = np.zeros(n_ops, np.int64)
    switches = np.zeros(n_ops, np.int64)
    ring_seg = np.full((N_BUFFERS, MAX_SLOTS), -1, np.int64)   # segment whose read holds each buffer slot
    ring_end = np.zeros((N_BUFFERS, MAX_SLOTS), np.int64)      # ... and when it finished computing
    ring_pos = np.zeros(N_BUFFERS, np.int64)
    fl_fill_end = np.zeros(IN_FLIGHT, np.int64)                # reads in flight, by load index % IN_FLIGHT
    fl_cause = np.zeros(IN_FLIGHT, np.int64)
    fl_slot = np.zeros(IN_FLIGHT, np.int64)
    port_free = np.zeros(N_BUFFERS, np.int64)
    dma_free = np.int64(0)
    compute_free = np.int64(0)
    cur_mode = -1
    next_seg = 0
    c_op = 0                    # op of next_seg
    next_load = 0
    l_op = 0                    # op of next_load
    issue = np.int64(-1)        # issue point of the last read: the latest segment any read waited for
    bpc = 0.0 if ideal else bytes_per_cycle
    lat = 0 if ideal else latency
    next_write = 0
    # fast-forward: the state at the start of the previous read step (see the docstring)
    snap_load = np.int64(-1)
    snap = np.zeros(3 + MAX_SLOTS, np.int64)
    now = np.zeros(3 + MAX_SLOTS, np.int64)
    snap_stalls = np.zeros(6, np.int64)
    snap_dram = np.int64(0)
    while True:
        # the next DMA command in issue order: write-backs before reads at the same issue point
        while next_write < n_ops and write_bytes[next_write] <= 0:
            next_write += 1
        have_load = next_load < n_load
        have_write = next_write < n_ops
        if not have_load and not have_write:
            break
        lbuf = 0
        lk = 0
        slot_seg = np.int64(-1)
        cur_issue = issue
        if have_load:
            while first_load[l_op + 1] <= next_load:
                l_op += 1
            lbuf = stream_buffer[l_op] if stream_buffer[l_op] >= 0 else BUF_ACTIVATIONS
            lk = ring_pos[lbuf] % slots[lbuf]
            slot_seg = ring_seg[lbuf, lk]
            cur_issue = max(issue, slot_seg)
        w_last = first_seg[next_write + 1] - 1 if have_write else np.int64(0)
        take_write = have_write and (not have_load or w_last <= cur_issue)
        need = w_last if take_write else slot_seg
        if take_write:
            snap_load = -1
        elif fast_forward:
            i = l_op
            gl = next_load
            nslot = slots[lbuf]
            parts = max(tiles[i], 1)
            j = gl - first_load[i]                              # part of the read about to be issued
            lo = need - first_seg[i] - 1                        # part of the previous step's compute
            # parts [lo, steady_end) get equal shares: _part adds 1 from part n - rem of each share on
            steady_end = parts
            for c in range(4):
                b = parts - split[i, c, 1]
                if lo < b < steady_end:
                    steady_end = b
            steady = need == next_seg and lo >= 0 and j >= nslot + 1 and j < steady_end
            for k in range(1, nslot + 1):       # the reads in flight (and the one before) stalled alike
                if steady and fl_cause[(gl - 1 - k) % IN_FLIGHT] != fl_cause[(gl - 1) % IN_FLIGHT]:
                    steady = False
            if steady:
                now[0] = dma_free
                now[1] = compute_free
                now[2] = port_free[lbuf]
                for k in range(nslot):
                    now[3 + k] = fl_fill_end[(gl - 1 - k) % IN_FLIGHT]
                if snap_load == gl - 1:
                    delta = now[0] - snap[0]
                    uniform = True
                    for c in range(3 + nslot):
                        if now[c] - snap[c] != delta:
                            uniform = False
                    m = steady_end - j
                    if have_write:              # stop before a write-back falls due
                        m = min(m, w_last - need)
                    if uniform and m > nslot:
                        last_fill = fl_fill_end[(gl - 1) % IN_FLIGHT]
                        cause = fl_cause[(gl - 1) % IN_FLIGHT]
                        for t in range(m - nslot - 1, m):   # reads left in flight (and the one before)
                            f = (gl + t) % IN_FLIGHT
                            fl_fill_end[f] = last_fill + (t + 1) * delta
                            fl_cause[f] = cause
                            fl_slot[f] = (ring_pos[lbuf] + t) % nslot
                            ring_seg[lbuf, fl_slot[f]] = first_seg[i] + j + t
                        ring_pos[lbuf] += m
                        issue = max(issue, need + m - 1)
                        for c in range(6):
                            stalls[i, c] += m * (stalls[i, c] - snap_stalls[c])
                        dram_read[i] += m * (dram_read[i] - snap_dram)
                        dma_free += m * delta
                        compute_free += m * delta
                        port_free[lbuf] += m * delta
                        op_end[i] = max(op_end[i], compute_free)
                        next_seg += m
                        next_load += m
                        snap_load = -1
                        continue
                snap_load = gl
                for c in range(3 + nslot):
                    snap[c] = now[c]
                for c in range(6):
                    snap_stalls[c] = stalls[i, c]
                snap_dram = dram_read[i]
            else:
                snap_load = -1
        # run compute up to the segment this command waits for
        while next_seg <= need:
            while first_seg[c_op + 1] <= next_seg:
                c_op += 1
            compute_free, cur_mode = _compute(next_seg, c_op, first_seg, first_load, unit, mode, tiles, load_bytes,
                                              stream_buffer, split, fl_fill_end, fl_cause, fl_slot, ring_end,
                                              compute_free, cur_mode, switch_cycles, ideal, op_start, op_end,
                                              op_compute_end, stalls, switches)
            next_seg += 1
        if take_write:
            i = next_write
            start = max(dma_free, op_compute_end[i])
            nbytes, cycles = _transfer_cycles(write_bytes[i], burst, bpc)
            dram_write[i] += write_bytes[i] if nbytes == 0 else nbytes
            dma_free = start + cycles
            op_end[i] = max(op_end[i], dma_free)
            next_write += 1
        else:
            gl = next_load
            i = l_op
            ready = ring_end[lbuf, lk] if slot_seg >= 0 else np.int64(0)
            start = max(dma_free, ready)
            parts = max(tiles[i], 1)
            part = gl - first_load[i]
            share = _part(split[i, 0, 0], split[i, 0, 1], part, parts)
            nbytes, cycles = _transfer_cycles(share, burst, bpc)
            dram_read[i] += share if nbytes == 0 else nbytes
            slot_wait = ready > dma_free
            dma_free = start + cycles
            fill = 0 if ideal else _part(split[i, 1, 0], split[i, 1, 1], part, parts)
            f_start = max(start + lat, port_free[lbuf])
            arrival = dma_free + lat
            f_end = max(f_start + fill, arrival)
            port_free[lbuf] = f_end
            f = gl % IN_FLIGHT
            fl_fill_end[f] = f_end
            fl_cause[f] = ST_BUFFER if slot_wait else (ST_DRAM if arrival >= f_start + fill else ST_FILL)
            fl_slot[f] = lk
            ring_seg[lbuf, lk] = first_seg[i] + part
            ring_pos[lbuf] += 1
            issue = cur_issue
            op_start[i] = min(op_start[i], start)
            next_load += 1
    while next_seg < n_seg:
        while first_seg[c_op + 1] <= next_seg:
            c_op += 1
        compute_free, cur_mode = _compute(next_seg, c_op, first_seg, first_load, unit, mode, tiles, load_bytes,
                                          stream_buffer, split, fl_fill_end, fl_cause, fl_slot, ring_end,
                                          compute_free, cur_mode, switch_cycles, ideal, op_start, op_end,
                                          op_compute_end, stalls, switches)
        next_seg += 1
    total = max(compute_free, dma_free)
    if n_ops > 0:
        stalls[n_ops - 1, ST_DRAIN] += total - compute_free
    return op_start, op_end, stalls, dram_read, dram_write, switches, total


@njit(cache=True, inline="always")
def _compute(sg, i, first_seg, first_load, unit, mode, tiles, load_bytes, stream_buffer, split, fl_fill_end,
             fl_cause, fl_slot, ring_end, compute_free, cur_mode, switch_cycles, ideal, op_start, op_end,
             op_compute_end, stalls, switches):
    """Compute segment ``sg`` (of op ``i``) on the pipeline; returns (end, mode)."""
    parts = max(tiles[i], 1)
    part = sg - first_seg[i]
    t0 = compute_free
    ready = t0
    if unit[i] == 0:
        if cur_mode >= 0 and mode[i] != cur_mode:
            ready = t0 + switch_cycles
            switches[i] += 1
        cur_mode = mode[i]
    has_load = load_bytes[i] > 0
    f = (first_load[i] + part) % IN_FLIGHT
    data = fl_fill_end[f] if has_load else np.int64(0)
    start = max(ready, data)
    gap = start - t0
    switch_part = min(gap, ready - t0)
    stalls[i, ST_SWITCH] += switch_part
    if gap > switch_part:
        stalls[i, fl_cause[f]] += gap - switch_part
    work = _part(split[i, 2, 0], split[i, 2, 1], part, parts)
    reads = 0 if ideal else _part(split[i, 3, 0], split[i, 3, 1], part, parts)
    duration = max(work, reads)
    stalls[i, ST_READ] += duration - work
    end = start + duration
    if has_load:
        buf = stream_buffer[i] if stream_buffer[i] >= 0 else BUF_ACTIVATIONS
        ring_end[buf, fl_slot[f]] = end
    if part == parts - 1:
        op_compute_end[i] = end
    op_start[i] = min(op_start[i], t0 if switch_part > 0 else start)
    op_end[i] = max(op_end[i], end)
    return end, cur_mode
