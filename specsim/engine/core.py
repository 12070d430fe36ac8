"""The discrete-event core, compiled with Numba: tile-level replay of a mapped operator list.

Semantics (``tests/reference_model.py``, the SimPy oracle, states the same in process form):

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

Code layout. :func:`replay_tiles` takes two named tuples, :class:`OpArrays` (per operator) and
:class:`MachineParams` (memory, DMA, pipeline), and copies them into numpy structured records: one
``OP_RECORD`` per operator (inputs, where its segments and reads sit, outputs) and one ``SIM_RECORD``
holding the ``MACHINE`` parameters, the mutable ``STATE`` and the fast-forward ``SNAPSHOT``. It then
loops over DMA commands in issue order: ``_compute_through`` runs the pipeline up to the segment a
command waits for, ``_issue_write`` / ``_issue_read`` issue it, ``_fast_forward`` skips steady runs.
The helpers are inlined into the one compiled entry point and take records, not arrays: a Numba
record is a bare pointer, whereas each array (or tuple of arrays) handed to an inlined helper may
cost a reference-count increment and decrement per call (measured: a tuple-of-arrays version ran
five times slower). A record holds no reference to the array it views, so the arrays go to ``_replay`` as
arguments (compiled apart, not inlined): the caller's references keep them alive.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

STALL_CAUSES = ("dram", "sram_fill", "buffer", "sram_read", "mode_switch", "drain")
ST_DRAM, ST_FILL, ST_BUFFER, ST_READ, ST_SWITCH, ST_DRAIN = range(6)
N_CAUSES = len(STALL_CAUSES)
N_BUFFERS = 4
BUF_ACTIVATIONS = 1
MAX_SLOTS = 8  # slots per buffer the rings hold (hardware config check)
IN_FLIGHT = 64  # ring of reads issued but not yet computed (>= N_BUFFERS * MAX_SLOTS)

# an operator's totals, each split into equal per-segment shares (OP_RECORD share_base / share_rem)
SHARE_BYTES, SHARE_FILL, SHARE_COMPUTE, SHARE_READ = range(4)
N_SHARES = 4
N_OBSERVED = 3 + MAX_SLOTS  # fast-forward state vector: DMA, compute, write port free, fill ends in flight


class OpArrays(NamedTuple):
    """Per-operator inputs of a replay: one entry per mapped operator, in program order."""

    unit: np.ndarray  #: 0 = PE array (runs in a mode), otherwise the vector unit
    mode: np.ndarray  #: PE-array mode index the op runs in
    tiles: np.ndarray  #: segments the op is cut into (< 1 counts as 1)
    stream_buffer: np.ndarray  #: buffer its reads stream into (-1: the activations buffer)
    load_bytes: np.ndarray  #: bytes read from DRAM (0: the op reads nothing)
    write_bytes: np.ndarray  #: bytes written back to DRAM after its last segment (0: none)
    fill_cycles: np.ndarray  #: cycles of the buffer's write port filling its reads
    compute_cycles: np.ndarray  #: cycles of compute with operands on chip
    sram_read_cycles: np.ndarray  #: cycles of SRAM reads feeding that compute


class MachineParams(NamedTuple):
    """Memory, DMA and pipeline parameters of the hardware."""

    slots: np.ndarray  #: (N_BUFFERS,) slots per buffer (2 when double-buffered), at most MAX_SLOTS
    bytes_per_cycle: float  #: DMA queue width over all DRAM channels, bytes per cycle
    latency: np.int64  #: cycles from a transfer to its data arriving (pipelined)
    burst: np.int64  #: bytes; every transfer is rounded up to whole bursts
    switch_cycles: np.int64  #: cycles of a PE-array mode change


_i8 = np.int64

#: One operator: inputs, layout (segment s of the op is part s - first_seg, read l is part l - first_load)
#: and outputs. The table has a sentinel row after the last op (first_seg / first_load = the totals).
OP_RECORD = np.dtype(
    [
        ("unit", _i8),
        ("mode", _i8),  # 0 = PE array, else vector unit; PE-array mode index
        ("parts", _i8),  # segments (tiles, at least 1)
        ("buffer", _i8),  # buffer its reads stream into
        ("load_bytes", _i8),  # bytes read from DRAM (0: no reads)
        ("write_bytes", _i8),  # bytes written back after its last segment (0: none)
        ("first_seg", _i8),  # its first segment
        ("first_load", _i8),  # its first read (load index)
        ("share_base", _i8, (N_SHARES,)),  # per-segment share of bytes, fill, compute, SRAM-read cycles:
        ("share_rem", _i8, (N_SHARES,)),  # base, plus 1 on the last `rem` parts (they sum to the total)
        ("start", _i8),  # out: cycle its first DRAM read or compute started
        ("end", _i8),  # out: cycle its last compute or write-back ended
        ("compute_end", _i8),  # out: cycle its last segment computed (its write-back may start)
        ("stalls", _i8, (N_CAUSES,)),  # out: compute-pipeline stall cycles by cause
        ("dram_read", _i8),  # out: bytes read, burst-rounded
        ("dram_write", _i8),  # out: bytes written, burst-rounded
        ("switches", _i8),  # out: mode switches before its segments
    ]
)

#: Hardware parameters as the replay uses them (``ideal``: memory is free, no transfer, fill or read time).
MACHINE = np.dtype(
    [
        ("slots", _i8, (N_BUFFERS,)),  # slots per buffer
        ("bytes_per_cycle", np.float64),  # DMA width, bytes per cycle (0 when ideal)
        ("latency", _i8),  # cycles from a transfer to its data arriving (0 when ideal)
        ("burst", _i8),  # bytes per burst
        ("switch_cycles", _i8),  # cycles of a PE-array mode change
        ("ideal", np.bool_),
    ]
)

#: The mutable simulation state (times in cycles).
STATE = np.dtype(
    [
        ("dma_free", _i8),  # cycle the DMA queue is free
        ("compute_free", _i8),  # cycle the compute pipeline is free (last segment's end)
        ("mode", _i8),  # PE-array mode of the last array segment (-1: none yet)
        ("issue", _i8),  # issue point of the last read: the latest segment a read waited for
        ("next_seg", _i8),
        ("seg_op", _i8),  # next segment to compute, its operator
        ("next_load", _i8),
        ("load_op", _i8),  # next read to issue (load index), its operator
        ("next_write", _i8),  # next operator whose write-back may be due
        ("slot_seg", _i8, (N_BUFFERS, MAX_SLOTS)),  # segment whose read holds each buffer slot (-1: none)
        ("slot_free", _i8, (N_BUFFERS, MAX_SLOTS)),  # cycle that segment finished computing
        ("buf_reads", _i8, (N_BUFFERS,)),  # reads issued into each buffer (its next slot: buf_reads % slots)
        ("port_free", _i8, (N_BUFFERS,)),  # cycle each buffer's SRAM write port is free
        ("fill_end", _i8, (IN_FLIGHT,)),  # reads in flight, by load % IN_FLIGHT: cycle its SRAM fill ends,
        ("cause", _i8, (IN_FLIGHT,)),  # the stall cause charged when compute waits for it,
        ("slot", _i8, (IN_FLIGHT,)),  # the buffer slot it occupies
    ]
)

#: Fast-forward: the state at the start of the previous read step (see :func:`replay_tiles`).
SNAPSHOT = np.dtype(
    [
        ("load", _i8),  # the read that step issued (-1: no snapshot)
        ("times", _i8, (N_OBSERVED,)),  # DMA, compute and write-port free, fill ends of the reads in flight
        ("now", _i8, (N_OBSERVED,)),  # the same at the start of the current step
        ("stalls", _i8, (N_CAUSES,)),  # the operator's stall cycles then
        ("dram", _i8),  # its DRAM read bytes then
    ]
)

SIM_RECORD = np.dtype([("machine", MACHINE), ("state", STATE), ("snapshot", SNAPSHOT)])


# ---- set-up and results -----------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _op_table(ops):
    """One OP_RECORD per operator (and the sentinel): inputs, segment and read indices, equal shares."""
    unit, mode, tiles, stream_buffer, load_bytes, write_bytes, fill_cycles, compute_cycles, sram_read_cycles = ops
    n_ops = unit.shape[0]
    table = np.zeros(n_ops + 1, OP_RECORD)
    for i in range(n_ops):
        op = table[i]
        parts = max(tiles[i], 1)
        op.unit, op.mode, op.parts = unit[i], mode[i], parts
        op.buffer = stream_buffer[i] if stream_buffer[i] >= 0 else BUF_ACTIVATIONS
        op.load_bytes, op.write_bytes = load_bytes[i], write_bytes[i]
        table[i + 1].first_seg = op.first_seg + parts
        table[i + 1].first_load = op.first_load + (parts if load_bytes[i] > 0 else 0)
        _split(op, SHARE_BYTES, load_bytes[i])
        _split(op, SHARE_FILL, fill_cycles[i])
        _split(op, SHARE_COMPUTE, compute_cycles[i])
        _split(op, SHARE_READ, sram_read_cycles[i])
        op.start = np.iinfo(np.int64).max  # the first event sets it
    return table


@njit(cache=True, inline="always")
def _split(op, which, total):
    """Store ``total`` as ``op.parts`` equal integer shares: base ``total // parts``, remainder ``total % parts``."""
    op.share_base[which] = total // op.parts
    op.share_rem[which] = total % op.parts


@njit(cache=True, inline="always")
def _new_sim(machine, ideal):
    """A one-element SIM_RECORD array: the machine (bandwidth and latency zeroed when ``ideal``), everything
    free at cycle 0, no segment computed, no read issued, empty slots, no snapshot."""
    sim = np.zeros(1, SIM_RECORD)
    m = sim[0].machine
    for b in range(N_BUFFERS):
        m.slots[b] = machine.slots[b]
    m.bytes_per_cycle = 0.0 if ideal else machine.bytes_per_cycle
    m.latency = 0 if ideal else machine.latency
    m.burst = machine.burst
    m.switch_cycles = machine.switch_cycles
    m.ideal = ideal
    state = sim[0].state
    state.mode = -1
    state.issue = -1
    state.slot_seg[:, :] = -1
    sim[0].snapshot.load = -1
    return sim


@njit(cache=True, inline="always")
def _results(table):
    """The outputs of the table as arrays: start, end, stalls[op, cause], dram_read, dram_write, switches."""
    n_ops = table.shape[0] - 1
    start, end = np.empty(n_ops, np.int64), np.empty(n_ops, np.int64)
    stalls = np.empty((n_ops, N_CAUSES), np.int64)
    dram_read, dram_write = np.empty(n_ops, np.int64), np.empty(n_ops, np.int64)
    switches = np.empty(n_ops, np.int64)
    for i in range(n_ops):
        op = table[i]
        start[i], end[i], dram_read[i], dram_write[i], switches[i] = (
            op.start,
            op.end,
            op.dram_read,
            op.dram_write,
            op.switches,
        )
        for c in range(N_CAUSES):
            stalls[i, c] = op.stalls[c]
    return start, end, stalls, dram_read, dram_write, switches


# ---- the entry point -----------------------------------------------------------------------------------


@njit(cache=True)
def replay_tiles(ops, machine, ideal, fast_forward):
    """Replay the mapped operators ``ops`` (:class:`OpArrays`) on ``machine`` (:class:`MachineParams`); returns
    per-op (start, end, stalls[op, cause], dram_read, dram_write, mode_switches) and the total cycles.
    ``ideal``: memory is free (no transfer, fill or read time).

    ``fast_forward``: skip the steady state of long runs of equal tiles exactly. The model is a max-plus
    system (every time is a max of sums of earlier times and constants), so it is shift-invariant: when
    one step (compute one tile, issue the read that reuses its slot) leaves the whole state -- DMA,
    compute and write-port free times and the fill times of the reads in flight -- shifted by the same
    delta as the step before, and the next ``m`` steps have the same inputs (same op, equal shares, no
    write-back due), each of them shifts the state by delta again. They are applied in one go, with the
    stall and DRAM counters advanced by ``m`` times the last step's increments."""
    table = _op_table(ops)
    sim = _new_sim(machine, ideal)
    return _replay(table, sim, fast_forward)  # (records view table and sim: this call keeps them alive)


@njit(cache=True)
def _replay(table, sim, fast_forward):
    """Issue every DMA command in order, computing the segments each waits for, then the rest; returns the
    outputs of ``table`` (OP_RECORDs, see :func:`_results`) and the total cycles. ``sim``: the SIM_RECORD."""
    n_ops = table.shape[0] - 1
    mach, state, snap = sim[0].machine, sim[0].state, sim[0].snapshot
    n_loads = table[n_ops].first_load
    while True:
        # the next DMA command in issue order: write-backs before reads at the same issue point
        while state.next_write < n_ops and table[state.next_write].write_bytes <= 0:
            state.next_write += 1
        next_write = state.next_write
        have_load = state.next_load < n_loads
        have_write = next_write < n_ops
        if not have_load and not have_write:
            break
        buf, slot, slot_seg = 0, 0, np.int64(-1)  # the next read's buffer, slot and the slot's last segment
        read_issue = state.issue
        if have_load:
            buf, slot, slot_seg = _next_read_slot(table, mach, state)
            read_issue = max(read_issue, slot_seg)
        write_last_seg = table[next_write + 1].first_seg - 1 if have_write else np.int64(0)
        take_write = have_write and (not have_load or write_last_seg <= read_issue)
        if take_write:
            snap.load = -1
        elif fast_forward and _fast_forward(
            table[state.load_op], buf, slot_seg, have_write, write_last_seg, mach, state, snap
        ):
            continue
        _compute_through(write_last_seg if take_write else slot_seg, table, mach, state)  # what the command waits for
        if take_write:
            _issue_write(table[next_write], mach, state)
            state.next_write = next_write + 1
        else:
            _issue_read(table[state.load_op], buf, slot, slot_seg, read_issue, mach, state)
    _compute_through(table[n_ops].first_seg - 1, table, mach, state)
    total = max(state.compute_free, state.dma_free)
    if n_ops > 0:
        table[n_ops - 1].stalls[ST_DRAIN] += total - state.compute_free
    start, end, stalls, dram_read, dram_write, switches = _results(table)
    return start, end, stalls, dram_read, dram_write, switches, total


# ---- DMA commands ------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _next_read_slot(table, mach, state):
    """(buffer, slot, segment whose read last held that slot or -1) of the next read; moves ``state.load_op``
    to the read's operator."""
    while table[state.load_op + 1].first_load <= state.next_load:
        state.load_op += 1
    buf = table[state.load_op].buffer
    slot = state.buf_reads[buf] % mach.slots[buf]
    return buf, slot, state.slot_seg[buf, slot]


@njit(cache=True, inline="always")
def _transfer_cycles(nbytes, burst, bytes_per_cycle):
    """A DMA transfer of ``nbytes``: (burst-rounded bytes, cycles it occupies the queue); (0, 0) for no bytes
    or free memory (``bytes_per_cycle`` 0)."""
    if nbytes <= 0 or bytes_per_cycle <= 0.0:
        return 0, 0
    rounded = -(-nbytes // burst) * burst
    return rounded, np.int64(np.ceil(rounded / bytes_per_cycle))


@njit(cache=True, inline="always")
def _issue_write(op, mach, state):
    """Issue operator ``op``'s write-back on the DMA queue, after its last segment computed."""
    start = max(state.dma_free, op.compute_end)
    nbytes, cycles = _transfer_cycles(op.write_bytes, mach.burst, mach.bytes_per_cycle)
    op.dram_write += op.write_bytes if nbytes == 0 else nbytes
    state.dma_free = start + cycles
    op.end = max(op.end, state.dma_free)


@njit(cache=True, inline="always")
def _issue_read(op, buf, slot, slot_seg, read_issue, mach, state):
    """Issue the next read (of operator ``op``) into ``slot`` of buffer ``buf``, once ``slot_seg`` (the slot's
    last segment, -1: none) computed: DMA transfer, then SRAM fill on the buffer's write port."""
    load = state.next_load
    dma_free = state.dma_free
    ready = state.slot_free[buf, slot] if slot_seg >= 0 else np.int64(0)  # cycle the slot is free
    start = max(dma_free, ready)
    part = load - op.first_load
    share = _share(op, SHARE_BYTES, part)
    nbytes, cycles = _transfer_cycles(share, mach.burst, mach.bytes_per_cycle)
    op.dram_read += share if nbytes == 0 else nbytes
    slot_wait = ready > dma_free
    dma_free = start + cycles
    fill = 0 if mach.ideal else _share(op, SHARE_FILL, part)
    fill_start = max(start + mach.latency, state.port_free[buf])
    arrival = dma_free + mach.latency
    fill_end = max(fill_start + fill, arrival)
    state.port_free[buf] = fill_end
    f = load % IN_FLIGHT
    state.fill_end[f] = fill_end
    state.cause[f] = ST_BUFFER if slot_wait else (ST_DRAM if arrival >= fill_start + fill else ST_FILL)
    state.slot[f] = slot
    state.slot_seg[buf, slot] = op.first_seg + part
    state.buf_reads[buf] += 1
    state.issue = read_issue
    op.start = min(op.start, start)
    state.dma_free = dma_free
    state.next_load = load + 1


# ---- the compute pipeline --------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _share(op, which, part):
    """Part ``part`` of operator ``op``'s equal shares of total ``which`` (a ``SHARE_*``)."""
    return op.share_base[which] + (1 if part >= op.parts - op.share_rem[which] else 0)


@njit(cache=True, inline="always")
def _compute_through(last_seg, table, mach, state):
    """Compute the segments from ``state.next_seg`` through ``last_seg`` in program order."""
    seg = state.next_seg
    i = state.seg_op
    compute_free = state.compute_free
    mode = state.mode
    while seg <= last_seg:
        while table[i + 1].first_seg <= seg:
            i += 1
        compute_free, mode = _compute_segment(seg, table[i], compute_free, mode, mach, state)
        seg += 1
    state.next_seg = seg
    state.seg_op = i
    state.compute_free = compute_free
    state.mode = mode


@njit(cache=True, inline="always")
def _compute_segment(seg, op, free, mode, mach, state):
    """Compute segment ``seg`` of operator ``op`` on the pipeline, free from cycle ``free`` and last in
    PE-array mode ``mode``; charges its stalls and returns (its end cycle, the mode after it)."""
    part = seg - op.first_seg
    ready = free  # cycle the mode switch (if any) is done
    if op.unit == 0:
        if mode >= 0 and op.mode != mode:
            ready = free + mach.switch_cycles
            op.switches += 1
        mode = op.mode
    has_load = op.load_bytes > 0
    f = (op.first_load + part) % IN_FLIGHT  # its read in the in-flight ring
    data = state.fill_end[f] if has_load else np.int64(0)
    start = max(ready, data)
    gap = start - free
    switch_part = min(gap, ready - free)
    op.stalls[ST_SWITCH] += switch_part
    if gap > switch_part:
        op.stalls[state.cause[f]] += gap - switch_part
    work = _share(op, SHARE_COMPUTE, part)
    reads = 0 if mach.ideal else _share(op, SHARE_READ, part)
    duration = max(work, reads)
    op.stalls[ST_READ] += duration - work
    end = start + duration
    if has_load:
        state.slot_free[op.buffer, state.slot[f]] = end
    if part == op.parts - 1:
        op.compute_end = end
    op.start = min(op.start, free if switch_part > 0 else start)
    op.end = max(op.end, end)
    return end, mode


# ---- exact fast-forward ------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _fast_forward(op, buf, wait_seg, have_write, write_last_seg, mach, state, snap):
    """Before the read step that computes through ``wait_seg`` and issues operator ``op``'s next read into
    ``buf``: skip it and the equal steps after it when the state shifted uniformly over the previous step
    (see :func:`replay_tiles`); otherwise take a snapshot when this step may start a steady run. Returns
    whether it skipped (the command loop then picks the next command afresh)."""
    load = state.next_load
    n_slots = mach.slots[buf]
    run_end = _steady_run_end(op, load, wait_seg, n_slots, state)
    if run_end < 0:
        snap.load = -1
        return False
    now = snap.now
    now[0] = state.dma_free
    now[1] = state.compute_free
    now[2] = state.port_free[buf]
    for k in range(n_slots):
        now[3 + k] = state.fill_end[(load - 1 - k) % IN_FLIGHT]
    if snap.load == load - 1:
        delta = now[0] - snap.times[0]  # cycles the previous step shifted the state by
        uniform = True
        for c in range(3 + n_slots):
            if now[c] - snap.times[c] != delta:
                uniform = False
        steps = run_end - (load - op.first_load)
        if have_write:  # stop before a write-back falls due
            steps = min(steps, write_last_seg - wait_seg)
        if uniform and steps > n_slots:
            _skip_steps(steps, delta, op, buf, wait_seg, n_slots, state, snap)
            snap.load = -1
            return True
    snap.load = load
    for c in range(3 + n_slots):
        snap.times[c] = now[c]
    for c in range(N_CAUSES):
        snap.stalls[c] = op.stalls[c]
    snap.dram = op.dram_read
    return False


@njit(cache=True, inline="always")
def _steady_run_end(op, load, wait_seg, n_slots, state):
    """The part of operator ``op`` where the run of equal read steps holding this one (compute ``wait_seg``,
    issue read ``load``) ends, or -1 when this step cannot be skipped: it must compute the next segment,
    follow a step of the same op and have ``n_slots`` + 1 reads of it before, all stalled alike."""
    part = load - op.first_load  # part of the read about to be issued
    prev = wait_seg - op.first_seg - 1  # part of the previous step's compute
    # parts [prev, run_end) get equal shares: _share adds 1 from part parts - remainder of each share on
    run_end = op.parts
    for c in range(N_SHARES):
        first_larger = op.parts - op.share_rem[c]
        if prev < first_larger < run_end:
            run_end = first_larger
    if not (wait_seg == state.next_seg and prev >= 0 and part >= n_slots + 1 and part < run_end):
        return np.int64(-1)
    last_cause = state.cause[(load - 1) % IN_FLIGHT]
    for k in range(1, n_slots + 1):  # the reads in flight (and the one before) stalled alike
        if state.cause[(load - 1 - k) % IN_FLIGHT] != last_cause:
            return np.int64(-1)
    return run_end


@njit(cache=True, inline="always")
def _skip_steps(steps, delta, op, buf, wait_seg, n_slots, state, snap):
    """Apply ``steps`` read steps of operator ``op`` at once: every time advances ``steps * delta`` cycles,
    the counters ``steps`` times the last step's increment, and the ring gets the reads left in flight."""
    load = state.next_load
    part = load - op.first_load
    last = (load - 1) % IN_FLIGHT
    last_fill = state.fill_end[last]
    cause = state.cause[last]
    for t in range(steps - n_slots - 1, steps):  # reads left in flight (and the one before)
        f = (load + t) % IN_FLIGHT
        state.fill_end[f] = last_fill + (t + 1) * delta
        state.cause[f] = cause
        state.slot[f] = (state.buf_reads[buf] + t) % n_slots
        state.slot_seg[buf, state.slot[f]] = op.first_seg + part + t
    state.buf_reads[buf] += steps
    state.issue = max(state.issue, wait_seg + steps - 1)
    for c in range(N_CAUSES):
        op.stalls[c] += steps * (op.stalls[c] - snap.stalls[c])
    op.dram_read += steps * (op.dram_read - snap.dram)
    state.dma_free += steps * delta
    state.compute_free += steps * delta
    state.port_free[buf] += steps * delta
    op.end = max(op.end, state.compute_free)
    state.next_seg += steps
    state.next_load += steps
