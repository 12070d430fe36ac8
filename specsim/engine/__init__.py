"""Event replay of operator tables on a hardware config: :func:`simulate` -> :class:`SimResult`.

The Numba core (:mod:`specsim.engine.core`) is the engine; :mod:`specsim.engine.reference` is a
SimPy model of the same semantics used as a differential oracle in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specsim.engine.core import STALL_CAUSES, replay
from specsim.hardware.config import BUFFER_NAMES, HardwareConfig
from specsim.hardware.energy import Actions
from specsim.hardware.mapping import UNIT_ARRAY, Mapping, map_ops
from specsim.hardware.ops import OpTable


@dataclass
class SimResult:
    """Per-operator timing (cycles) and the action counts of one replay."""

    ops: OpTable
    mapping: Mapping
    op_start: np.ndarray        #: cycle the op's first DRAM read or compute started
    op_end: np.ndarray          #: cycle its last compute or write-back ended
    stalls: np.ndarray          #: (ops, len(STALL_CAUSES)) compute-pipeline stall cycles by cause
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

    def actions(self) -> Actions:
        m = self.mapping
        a = Actions(cycles=int(self.total_cycles), dram_read_bytes=int(self.dram_read_bytes.sum()),
                    dram_write_bytes=int(self.dram_write_bytes.sum()),
                    mode_switches=int(self.mode_switches.sum()))
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


def simulate(hw: HardwareConfig, ops: OpTable, *, ideal_memory: bool = False,
             scalesim_compatible: bool = False, fast_forward: bool = True) -> SimResult:
    """Map ``ops`` onto ``hw`` and replay them with the Numba event core.

    ``fast_forward`` skips steady runs of equal tiles exactly (same results, see
    :func:`specsim.engine.core.replay`); turn it off only to check that claim.
    """
    m = map_ops(hw, ops, scalesim_compatible=scalesim_compatible)
    slots = np.array([hw.buffers.get(b).slots for b in BUFFER_NAMES], dtype=np.int64)
    start, end, stalls, dread, dwrite, switches, total = replay(
        m.unit, m.mode, m.tiles, m.stream_buffer, m.load_bytes, m.write_bytes, m.fill_cycles,
        m.compute_cycles, m.sram_read_cycles, slots, float(hw.dram_bytes_per_cycle),
        np.int64(hw.dram_latency_cycles), np.int64(hw.dram.burst_bytes), np.int64(hw.array.mode_switch_cycles),
        ideal_memory, fast_forward)
    return SimResult(ops, m, start, end, stalls, dread, dwrite, switches, int(total))
