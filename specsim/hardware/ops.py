"""Operator tables: the hardware side's view of a workload (numpy arrays, one row per operator).

Three kinds of operator:

* ``gemm``: an (M x K) activation times a (K x N) weight matrix streamed from DRAM through the
  weights buffer (q/k/v/o, gate/up/down, lm_head);
* ``kv_gemm``: attention (QK^T or PV), ``batch`` heads each an (M x K)(K x N) product whose
  streamed operand is the KV cache (``streams`` KV heads, read through the kv_cache buffer);
* ``vector``: ``elements`` element-wise operations of one vector-unit kind (softmax, norm, ...).

The workload side builds these tables from trace templates; :func:`gemm_table` builds one GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specsim.errors import SpecsimError
from specsim.hardware.config import VECTOR_OPS

OP_KINDS = ("gemm", "kv_gemm", "vector")
KIND_GEMM, KIND_KV_GEMM, KIND_VECTOR = range(3)

COLUMNS = {  # name: (dtype, default)
    "kind": (np.int8, 0),
    "m": (np.int64, 1),
    "n": (np.int64, 1),
    "k": (np.int64, 1),
    "batch": (np.int64, 1),
    "streams": (np.int64, 1),
    "mode": (np.int16, 0),
    "vector_op": (np.int8, 0),
    "input_resident": (np.bool_, True),
    "output_resident": (np.bool_, True),
    "extra_cycles": (np.int64, 0),
    "extra_cycles_per_output_tile": (np.int64, 0),
    "window": (np.int64, 0),
}
#: generic columns an accelerator method fills (see specsim.methods): array cycles added once per
#: operator (e.g. a decoder pipeline's latency) and once per output tile (e.g. accumulator shifts)
EXTRA_COLUMNS = ("extra_cycles", "extra_cycles_per_output_tile")


@dataclass
class OpTable:
    """Columns of equal length; ``mode`` indexes ``modes``, ``vector_op`` indexes VECTOR_OPS.

    For ``vector`` rows the element count is ``m * n * batch``. ``window`` (tokens, 0: none) is the sliding
    attention window of the row's layer on its attention rows and KV-cache writers; the lowering has already
    applied it to the attention rows' KV length, and capacity reads it for the KV cache a layer keeps.
    ``streams`` counts the distinct
    streamed matrices (KV heads; 1 for a weight GEMM). ``extra_cycles`` (cycles, once per operator) and
    ``extra_cycles_per_output_tile`` (cycles, once per output tile) are an accelerator method's extras.
    """

    modes: tuple[str, ...]
    columns: dict[str, np.ndarray]
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns["kind"])

    def __getattr__(self, item: str) -> np.ndarray:
        try:
            return self.__dict__["columns"][item]
        except KeyError:
            raise AttributeError(item) from None

    @classmethod
    def from_rows(cls, rows: list[dict], modes: tuple[str, ...]) -> OpTable:
        """Build from dicts (keys of ``COLUMNS`` plus ``name``; ``kind``/``mode``/``vector_op`` by name)."""
        cols = {k: np.full(len(rows), d, dtype=t) for k, (t, d) in COLUMNS.items()}
        names = []
        for i, row in enumerate(rows):
            for key, value in row.items():
                if key == "name":
                    continue
                if key not in cols:
                    raise SpecsimError(f"operator {i}: unknown field {key!r}")
                if key == "kind":
                    value = OP_KINDS.index(value)
                elif key == "mode":
                    if value not in modes:
                        raise SpecsimError(f"operator {row.get('name', i)}: mode {value!r} is not one of {modes}")
                    value = modes.index(value)
                elif key == "vector_op":
                    value = VECTOR_OPS.index(value)
                cols[key][i] = value
            names.append(str(row.get("name", f"op{i}")))
        table = cls(tuple(modes), cols, names)
        table.check()
        return table

    def check(self) -> None:
        for key, least in (
            ("m", 1),
            ("n", 1),
            ("k", 1),
            ("batch", 1),
            ("streams", 1),
            *((name, 0) for name in EXTRA_COLUMNS),
        ):
            bad = np.flatnonzero(self.columns[key] < least)
            if bad.size:
                raise SpecsimError(f"operator {self.names[bad[0]] if self.names else bad[0]}: {key} must be >= {least}")

    @property
    def macs(self) -> np.ndarray:
        """MACs per operator (0 for vector ops)."""
        return np.where(self.kind == KIND_VECTOR, 0, self.m * self.n * self.k * self.batch)


def gemm_table(m: int, n: int, k: int, mode: str, modes: tuple[str, ...], resident: bool = False) -> OpTable:
    """One standalone GEMM; by default its input comes from and its output goes to DRAM."""
    return OpTable.from_rows(
        [
            {
                "name": f"gemm_{m}x{n}x{k}",
                "kind": "gemm",
                "m": m,
                "n": n,
                "k": k,
                "mode": mode,
                "input_resident": resident,
                "output_resident": resident,
            }
        ],
        modes,
    )
