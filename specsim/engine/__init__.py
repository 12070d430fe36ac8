"""Event replay of operator tables on a hardware config: :func:`simulate` -> :class:`SimResult`.

The Numba core (:mod:`specsim.engine.core`) is the engine; ``tests/reference_model.py`` is a SimPy
model of the same semantics, the differential oracle of the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from specsim.engine.bounds import ordered_floor
from specsim.engine.core import STALL_CAUSES, MachineParams, OpArrays, replay_tiles
from specsim.errors import SpecsimError
from specsim.hardware.config import BUFFER_NAMES, HardwareConfig
from specsim.hardware.energy import Actions, OpActions
from specsim.hardware.mapping import UNIT_ARRAY, Mapping, map_ops
from specsim.hardware.ops import OpTable


@dataclass
class SimResult:
    """Per-operator timing (cycles) and the action counts of one replay."""

    ops: OpTable
    mapping: Mapping
    op_start: np.ndarray  #: cycle the op's first DRAM read or compute started
    op_end: np.ndarray  #: cycle its last compute or write-back ended
    stalls: np.ndarray  #: (ops, len(STALL_CAUSES)) compute-pipeline stall cycles by cause
    dram_read_bytes: np.ndarray  #: per op, burst-rounded
    dram_write_bytes: np.ndarray
    mode_switches: np.ndarray
    total_cycles: int

    @property
    def compute_cycles(self) -> int:
        """Cycles the array/vector unit computes with operands on chip (no memory effects)."""
        return int(self.mapping.compute_cycles.sum())

    @property
    def stall_cycles(self) -> int:
        return int(self.stalls.sum())

    def stalls_by_cause(self) -> dict[str, int]:
        return {c: int(v) for c, v in zip(STALL_CAUSES, self.stalls.sum(axis=0))}

    def floor_cycles(self, hw: HardwareConfig) -> tuple[float, float]:
        """The replay's two floors in cycles: its compulsory DRAM bytes at ``hw``'s peak bandwidth, and
        its MACs at the array's peak rate plus the vector unit's busy cycles."""
        d, c, _ = self._floors(hw)
        return float(d.sum()), float(c.sum())

    def _floors(self, hw: HardwareConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per operator: compulsory DRAM cycles, compulsory DRAM read cycles, compute-floor cycles."""
        m = self.mapping
        on_array = m.unit == UNIT_ARRAY
        bw = hw.dram_bytes_per_cycle
        dram = m.compulsory_bytes / bw
        reads = np.maximum(m.compulsory_bytes - m.write_bytes, 0) / bw
        compute = np.where(on_array, m.macs / m.peak_macs_per_cycle, m.compute_cycles)
        return dram, compute, reads

    def lower_bound_cycles(self, hw: HardwareConfig) -> float:
        """A true lower bound of ``total_cycles`` from the DRAM and compute roofs, the order operators run
        in and what the buffers can prefetch (:mod:`specsim.engine.bounds`); at least the larger of
        the two whole-run floors."""
        m = self.mapping
        dram, compute, reads = self._floors(hw)
        tiles = np.maximum(m.tiles, 1)
        per_tile = -(-m.load_bytes // tiles)  # bytes of an op's largest read
        buffer_of = np.where(m.stream_buffer >= 0, m.stream_buffer, BUFFER_NAMES.index("activations"))
        burst = hw.dram.burst_bytes
        cap = 0.0
        for b, name in enumerate(BUFFER_NAMES):  # every slot of every buffer holding a read
            largest = int(per_tile[buffer_of == b].max(initial=0))
            cap += hw.buffers.get(name).slots * math.ceil(-(-largest // burst) * burst / hw.dram_bytes_per_cycle)
        return max(float(dram.sum()), float(compute.sum()), ordered_floor(reads, compute, float(cap)))

    def op_actions(self) -> OpActions:
        """The action counts of every operator (what :meth:`actions` sums)."""
        m = self.mapping
        on_array = m.unit == UNIT_ARRAY
        return OpActions(
            dram_bytes=self.dram_read_bytes + self.dram_write_bytes,
            sram_bytes=m.sram_read_bytes + m.sram_write_bytes,
            macs=np.where(on_array, m.macs, 0),
            mode=m.mode,
            modes=self.ops.modes,
            on_array=on_array,
            vector_busy_cycles=np.where(on_array, 0, m.compute_cycles),
            mode_switches=self.mode_switches,
        )

    def actions(self) -> Actions:
        m = self.mapping
        a = Actions(
            cycles=int(self.total_cycles),
            dram_read_bytes=int(self.dram_read_bytes.sum()),
            dram_write_bytes=int(self.dram_write_bytes.sum()),
            mode_switches=int(self.mode_switches.sum()),
        )
        for b, name in enumerate(BUFFER_NAMES):
            a.sram_read_bytes[name] = int(m.sram_read_bytes[:, b].sum())
            a.sram_write_bytes[name] = int(m.sram_write_bytes[:, b].sum())
        array = m.unit == UNIT_ARRAY
        for idx, name in enumerate(self.ops.modes):
            sel = array & (m.mode == idx)
            if sel.any():
                a.macs[name] = int(m.macs[sel].sum())
                a.array_busy_cycles[name] = int(m.compute_cycles[sel].sum())
        a.vector_busy_cycles = int(m.compute_cycles[~array].sum())
        return a


MAX_CYCLES = 2**62  #: simulated time must fit int64 with room: a longer run is refused, never wrapped
MAX_TILES = 2**31  #: buffer-slot tiles one replay may visit (seconds with the exact fast-forward, a minute without)


def _check_work(hw: HardwareConfig, m) -> None:
    """One line when the replay would visit more than :data:`MAX_TILES` tiles, or could run past
    :data:`MAX_CYCLES`: an upper bound of its time is every operator's compute and SRAM reads, every DRAM
    byte at the bandwidth, and a latency, a switch and a burst per tile."""
    tiles = float(np.maximum(m.tiles, 1).astype(np.float64).sum())
    if tiles > MAX_TILES:
        raise SpecsimError(
            f"{hw.path}: this workload streams {tiles:.3g} buffer tiles through the engine, more "
            f"than the {MAX_TILES:.3g} one run may simulate; shrink the workload (prompt length, "
            "tokens) or give larger buffers"
        )
    transfer = float((m.load_bytes.astype(np.float64) + m.write_bytes).sum()) / hw.dram_bytes_per_cycle
    per_tile = hw.dram_latency_cycles + hw.array.mode_switch_cycles + hw.dram.burst_bytes / hw.dram_bytes_per_cycle + 2
    upper = (
        float(m.compute_cycles.astype(np.float64).sum())
        + float(m.sram_read_cycles.astype(np.float64).sum())
        + transfer
        + tiles * per_tile
    )
    if not upper < MAX_CYCLES:
        raise SpecsimError(
            f"{hw.path}: this workload could take up to {upper:.3g} cycles at "
            f"{hw.dram.bandwidth_gbps:g} GB/s and {hw.clock_ghz:g} GHz, more than the {MAX_CYCLES:.3g} "
            "the simulator counts exactly; raise the bandwidth or shrink the workload"
        )


def simulate(
    hw: HardwareConfig,
    ops: OpTable,
    *,
    ideal_memory: bool = False,
    scalesim_compatible: bool = False,
    fast_forward: bool = True,
) -> SimResult:
    """Map ``ops`` onto ``hw`` and replay them with the Numba event core.

    ``fast_forward`` skips steady runs of equal tiles exactly (same results, see
    :func:`specsim.engine.core.replay_tiles`); turn it off only to check that claim.
    """
    m = map_ops(hw, ops, scalesim_compatible=scalesim_compatible)
    _check_work(hw, m)
    slots = np.array([hw.buffers.get(b).slots for b in BUFFER_NAMES], dtype=np.int64)
    op_arrays = OpArrays(
        m.unit,
        hw.switch_groups(ops.modes)[m.mode],  # a mode switch is a change of PE configuration
        m.tiles,
        m.stream_buffer,
        m.load_bytes,
        m.write_bytes,
        m.fill_cycles,
        m.compute_cycles,
        m.sram_read_cycles,
    )
    machine = MachineParams(
        slots=slots,
        bytes_per_cycle=float(hw.dram_bytes_per_cycle),
        latency=np.int64(hw.dram_latency_cycles),
        burst=np.int64(hw.dram.burst_bytes),
        switch_cycles=np.int64(hw.array.mode_switch_cycles),
    )
    start, end, stalls, dread, dwrite, switches, total = replay_tiles(op_arrays, machine, ideal_memory, fast_forward)
    return SimResult(ops, m, start, end, stalls, dread, dwrite, switches, int(total))
