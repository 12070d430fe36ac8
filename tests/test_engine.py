"""Event engine: Numba core == SimPy reference on random workloads; physical bounds hold."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from reference_model import simulate_reference

from specsim.engine import simulate
from specsim.engine.core import STALL_CAUSES
from specsim.errors import SpecsimError
from specsim.hardware.config import load_hardware
from specsim.hardware.energy import energy_breakdown, energy_table_for, group_breakdown
from specsim.hardware.ops import KIND_VECTOR, OpTable, gemm_table
from specsim.typedconfig import revalidate

BASE = load_hardware("speq")
MODES = tuple(BASE.modes)


@st.composite
def hardware(draw):
    """Small arrays and buffers (many tiles, tight slots), slow or fast DRAM, any dataflow."""
    rep = dataclasses.replace
    b = BASE.buffers

    def buf(old, size):
        return rep(
            old,
            size_kib=size,
            double_buffered=draw(st.booleans()),
            banks=draw(st.integers(1, 4)),
            width_bits=draw(st.sampled_from([8, 32, 64])),
            ports=draw(st.integers(1, 2)),
        )

    hw = rep(
        BASE,
        clock_ghz=1.0,
        array=rep(
            BASE.array,
            rows=draw(st.integers(1, 6)),
            cols=draw(st.integers(1, 6)),
            dataflow=draw(st.sampled_from(["ws", "os", "is"])),
            mode_switch_cycles=draw(st.integers(0, 12)),
            preload_bits_per_column=draw(st.sampled_from([4, 16, 48, 64])),
        ),
        buffers=rep(
            b,
            weights=buf(b.weights, draw(st.sampled_from([0.5, 1.0, 4.0]))),
            activations=buf(b.activations, 8.0),
            outputs=buf(b.outputs, 4.0),
            kv_cache=buf(b.kv_cache, draw(st.sampled_from([0.5, 2.0]))),
        ),
        dram=rep(
            BASE.dram,
            bandwidth_gbps=draw(st.sampled_from([0.5, 3.0, 16.0, 500.0])),
            latency_ns=draw(st.sampled_from([0.0, 7.0, 40.0])),
            burst_bytes=draw(st.sampled_from([1, 32, 64])),
            weight_layout=draw(st.sampled_from(["nibble_planes", "packed"])),
        ),
    )
    try:
        return revalidate(hw, "hypothesis")
    except SpecsimError:
        assume(False)


@st.composite
def workloads(draw):
    rows = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["gemm", "gemm", "kv_gemm", "vector"]))
        row = {
            "name": f"op{i}",
            "kind": kind,
            "m": draw(st.integers(1, 9)),
            "n": draw(st.integers(1, 70)),
            "k": draw(st.integers(1, 70)),
            "mode": draw(st.sampled_from(MODES)),
            "input_resident": draw(st.booleans()),
            "output_resident": draw(st.booleans()),
        }
        if kind == "kv_gemm":
            row.update(mode="fp16", batch=draw(st.integers(1, 4)))
            row["streams"] = draw(st.integers(1, row["batch"]))
        elif kind == "vector":
            row["vector_op"] = draw(st.sampled_from(["softmax", "norm", "activation"]))
        else:
            row["extra_cycles_per_output_tile"] = draw(st.sampled_from([0, 0, 3]))
            row["extra_cycles"] = draw(st.sampled_from([0, 0, 2]))
        rows.append(row)
    return OpTable.from_rows(rows, MODES)


def _same(a, b):
    assert a.total_cycles == b.total_cycles
    for key in ("op_start", "op_end", "stalls", "dram_read_bytes", "dram_write_bytes", "mode_switches"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    assert a.actions() == b.actions()


@given(hardware(), workloads(), st.booleans(), st.booleans())
def test_numba_engine_equals_simpy_reference(hw, ops, ideal, scalesim):
    _same(
        simulate(hw, ops, ideal_memory=ideal, scalesim_compatible=scalesim),
        simulate_reference(hw, ops, ideal_memory=ideal, scalesim_compatible=scalesim),
    )


@st.composite
def long_runs(draw):
    """Operators of hundreds of equal tiles (tiny buffers, long K), where fast-forward engages."""
    rows = []
    for i in range(draw(st.integers(1, 4))):
        rows.append(
            {
                "name": f"op{i}",
                "kind": "gemm",
                "m": draw(st.integers(1, 6)),
                "n": draw(st.integers(8, 200)),
                "k": draw(st.integers(200, 3000)),
                "mode": draw(st.sampled_from(MODES)),
                "input_resident": draw(st.booleans()),
                "output_resident": draw(st.booleans()),
            }
        )
        if draw(st.booleans()):
            rows.append(
                {
                    "name": f"v{i}",
                    "kind": "vector",
                    "m": 1,
                    "n": draw(st.integers(1, 4000)),
                    "k": 1,
                    "mode": "fp16",
                    "vector_op": "norm",
                    "input_resident": True,
                    "output_resident": True,
                }
            )
    return OpTable.from_rows(rows, MODES)


@given(hardware(), long_runs(), st.booleans())
def test_fast_forward_is_exact(hw, ops, ideal):
    """Skipping steady runs of equal tiles changes nothing: every per-op figure is identical."""
    _same(
        simulate(hw, ops, ideal_memory=ideal, fast_forward=True),
        simulate(hw, ops, ideal_memory=ideal, fast_forward=False),
    )


def test_fast_forward_is_exact_on_a_llama_decode_step():
    """A Llama-2-7B FP16 decode pass and a quarter-mode draft pass (418 ops, ~50k tiles) at several
    bandwidths: fast-forward and tile-by-tile replay agree exactly."""
    from specsim.hardware.lowering import level_templates, steps_table
    from specsim.trace.architectures import load_architecture
    from specsim.trace.schedule import AcceptanceProfile, shape_trace
    from specsim.trace.tracefile import Trace

    header, arrays = shape_trace(
        load_architecture("llama-2-7b"),
        "bsfp_draft",
        2,
        AcceptanceProfile.parametric(0.6, 2),
        [8],
        3,
        0,
        target_format="fp16",
    )
    trace = Trace("shape", header, arrays)
    for gbps in (64.0, 256.0, 4096.0):
        hw = dataclasses.replace(BASE, dram=dataclasses.replace(BASE.dram, bandwidth_gbps=gbps))
        templates = level_templates(trace, ["fp16", "quarter"], MODES, kv_streams=32)
        ops, _ = steps_table(
            templates, MODES, trace["step_level"], trace["step_tokens"], trace["step_past"], trace["step_logits"]
        )
        _same(simulate(hw, ops, fast_forward=True), simulate(hw, ops, fast_forward=False))


def test_differential_workloads_exercise_every_stall_cause():
    """The random workloads above reach every stall cause (so the differential test checks them all)."""
    rng = np.random.default_rng(1)
    seen = np.zeros(len(STALL_CAUSES), dtype=np.int64)
    rep = dataclasses.replace
    for trial in range(60):
        single = trial % 2 == 0
        hw = rep(
            BASE,
            array=rep(BASE.array, rows=4, cols=4, mode_switch_cycles=5),
            buffers=rep(
                BASE.buffers,
                weights=rep(
                    BASE.buffers.weights,
                    size_kib=0.5,
                    double_buffered=not single,
                    banks=1,
                    width_bits=int(rng.choice([8, 256])),
                ),
            ),
            dram=rep(BASE.dram, bandwidth_gbps=float(rng.choice([2.0, 64.0, 4000.0])), latency_ns=20.0),
        )
        rows = [
            {
                "kind": "gemm",
                "m": int(rng.integers(1, 6)),
                "n": int(rng.integers(8, 64)),
                "k": int(rng.integers(8, 64)),
                "mode": str(rng.choice(MODES)),
                "output_resident": bool(rng.integers(2)),
            }
            for _ in range(4)
        ]
        ops = OpTable.from_rows(rows, MODES)
        a = simulate(hw, ops)
        _same(a, simulate_reference(hw, ops))
        seen += a.stalls.sum(axis=0)
    assert (seen > 0).all(), dict(zip(STALL_CAUSES, seen))


@given(hardware(), workloads(), st.booleans())
def test_physical_bounds(hw, ops, scalesim):
    r = simulate(hw, ops, scalesim_compatible=scalesim)
    m = r.mapping
    bpc = hw.dram_bytes_per_cycle
    span = r.op_end - r.op_start
    macs_bound = np.ceil(m.macs / m.peak_macs_per_cycle)
    dram_bound = np.ceil(m.compulsory_bytes / bpc)
    assert (m.compute_cycles >= macs_bound).all()
    assert (span >= np.maximum(macs_bound, dram_bound)).all()
    assert (span >= m.compute_cycles).all()
    np.testing.assert_array_equal(m.macs, np.where(ops.kind == KIND_VECTOR, 0, ops.m * ops.n * ops.k * ops.batch))
    assert ((r.dram_read_bytes + r.dram_write_bytes) >= m.compulsory_bytes).all()
    peak = hw.pes * max(md.lanes for md in hw.modes.values())
    assert m.macs.sum() <= r.total_cycles * peak
    assert r.total_cycles == r.compute_cycles + r.stall_cycles
    ideal = simulate(hw, ops, ideal_memory=True, scalesim_compatible=scalesim)
    assert ideal.total_cycles == ideal.compute_cycles + ideal.stalls_by_cause()["mode_switch"] <= r.total_cycles
    breakdown = energy_breakdown(r.actions(), energy_table_for(BASE), hw)
    assert sum(group_breakdown(breakdown).values()) == pytest.approx(sum(breakdown.values()))
    assert all(v >= 0 for v in breakdown.values())


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_quarter_mode_on_nibble_planes_fetches_a_quarter_of_the_weight_bytes(dataflow):
    """The top-nibble plane (4 of 16 bits) plus the BSFP layout's per-block metadata (6 bits per 32 weights)."""
    hw = BASE.with_array(64, 64, dataflow)
    full = simulate(hw, gemm_table(1, 4096, 4096, "fp16", MODES, resident=True))
    quarter = simulate(hw, gemm_table(1, 4096, 4096, "quarter", MODES, resident=True))
    assert full.dram_read_bytes.sum() == 4096 * 4096 * 2
    hand = 4096 * 4096 * (4 + 6 / 32) / 8
    assert hand <= quarter.dram_read_bytes.sum() <= hand * 1.001  # each tile rounds up to 64-byte bursts
    packed = dataclasses.replace(hw, dram=dataclasses.replace(hw.dram, weight_layout="packed"))
    words = 4096 * 4096 * (16 + 6 / 32) / 8  # whole 16-bit words + the same metadata
    got = simulate(packed, gemm_table(1, 4096, 4096, "quarter", MODES, resident=True)).dram_read_bytes.sum()
    assert words <= got <= words * 1.001


def test_decode_gemv_is_bandwidth_bound_and_double_buffering_helps():
    hw = BASE
    r = simulate(hw, gemm_table(1, 4096, 4096, "fp16", MODES, resident=True))
    floor = 4096 * 4096 * 2 / hw.dram_bytes_per_cycle
    assert floor <= r.total_cycles <= 1.02 * floor + hw.dram_latency_cycles + 200
    single = dataclasses.replace(
        hw,
        buffers=dataclasses.replace(hw.buffers, weights=dataclasses.replace(hw.buffers.weights, double_buffered=False)),
    )
    slow = simulate(single, gemm_table(1, 4096, 4096, "fp16", MODES, resident=True))
    assert slow.total_cycles > r.total_cycles and slow.stalls_by_cause()["buffer"] > 0


def test_mode_switch_is_charged_between_draft_and_verify_ops():
    hw = BASE
    ops = OpTable.from_rows(
        [{"kind": "gemm", "m": 1, "n": 256, "k": 256, "mode": md} for md in ("quarter", "quarter", "fp16", "quarter")],
        MODES,
    )
    r = simulate(hw, ops, ideal_memory=True)
    assert r.mode_switches.sum() == 2
    assert r.stalls_by_cause()["mode_switch"] == 2 * hw.array.mode_switch_cycles
    assert r.total_cycles == r.compute_cycles + 2 * hw.array.mode_switch_cycles
    assert math.isclose(r.actions().macs["quarter"], 3 * 256 * 256)


def test_modes_of_one_pe_configuration_do_not_switch():
    """SPEQ's verify GEMMs read BSFP words (bsfp16) around FP16 attention: the same lanes, activations and
    weight elements as fp16, so no switch; quarter is another configuration. The SimPy model agrees."""
    hw = BASE
    assert hw.mode("bsfp16").lanes == hw.mode("fp16").lanes == 1
    ops = OpTable.from_rows(
        [{"kind": "gemm", "m": 5, "n": 256, "k": 256, "mode": md} for md in ("bsfp16", "fp16", "bsfp16", "quarter")],
        MODES,
    )
    r = simulate(hw, ops, ideal_memory=True)
    assert r.mode_switches.tolist() == [0, 0, 0, 1]
    assert simulate_reference(hw, ops, ideal_memory=True).mode_switches.tolist() == [0, 0, 0, 1]


@st.composite
def phases(draw):
    """Several random workloads and a long run of equal tiles back to back: phases that alternate
    between compute-bound and memory-bound, as prefill and decode passes do."""
    tables = [draw(workloads()) for _ in range(draw(st.integers(1, 4)))] + [draw(long_runs())]
    return OpTable(MODES, {k: np.concatenate([t.columns[k] for t in tables]) for k in tables[0].columns}, [])


@given(hardware(), st.one_of(workloads(), phases()), st.booleans())
def test_lower_bound_never_exceeds_the_simulated_time(hw, ops, scalesim):
    """Roofline efficiency (bound / simulated cycles) is in (0, 1] for any hardware and workload: the
    bound uses only the two roofs, program order and the buffer slots, never the engine's timing."""
    result = simulate(hw, ops, scalesim_compatible=scalesim)
    bound = result.lower_bound_cycles(hw)
    assert 0 < bound <= result.total_cycles
    dram, compute = result.floor_cycles(hw)
    assert max(dram, compute) <= bound
