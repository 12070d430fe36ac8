"""Trace schema 3 (token-tree rounds and attention groups) and tree passes on the array, by hand formulas."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from specsim.errors import SpecsimError
from specsim.hardware.ops import KIND_GEMM, KIND_KV_GEMM
from specsim.results.config import accelerators, load_run_config
from specsim.results.decoding import pass_table, prepare, replay, shape_workload_trace
from specsim.trace.architectures import load_architecture
from specsim.trace.tracefile import PHASES, SCHEMA_VERSION, Trace, read_trace, write_trace

ROOT = Path(__file__).resolve().parents[1]
#: a 7-node tree: two children of the root, two and one below them, two at depth 3 (BFS order)
PARENT = [-1, -1, 0, 0, 1, 2, 2]
DEPTH = [1, 1, 2, 2, 2, 3, 3]


def _tree_trace() -> Trace:
    """A SmolLM2-shaped speculative trace whose verify passes are tree passes: one uncached token, then
    the 7 nodes, each depth attending to the context and its ancestors."""
    cfg = load_run_config(ROOT / "hwconfigs" / "speq.yaml")
    shape = replace(cfg.workloads[1].shape, architecture="smollm2-135m", prompts=2, max_new_tokens=24)
    base = shape_workload_trace(shape, "bsfp_draft", 3, 0.7)
    arrays = dict(base.arrays)
    verify = np.flatnonzero(arrays["step_phase"] == PHASES.index("verify"))
    counts = np.bincount(DEPTH)[1:]  # nodes per depth: 2, 3, 2
    tokens, kv, steps = [], [], []
    for s in verify:
        past = int(arrays["step_past"][s])
        arrays["step_tokens"][s] = 1 + len(DEPTH)
        arrays["step_logits"][s] = 1 + len(DEPTH)
        steps += [s] * (1 + len(counts))
        tokens += [1, *counts.tolist()]
        kv += [past + 1, *(past + 1 + d for d in range(1, len(counts) + 1))]
    arrays.update(
        attn_step=np.array(steps, np.int32),
        attn_tokens=np.array(tokens, np.int32),
        attn_kv=np.array(kv, np.int32),
        round_nodes=np.full(arrays["round_drafted"].size, len(DEPTH), np.int16),
        # the deepest accepted node: 0 (depth 1), 2 (depth 2) or 5 (depth 3); none when nothing was accepted
        round_accepted_node=np.array([-1, 0, 2, 5], np.int16)[arrays["round_accepted"]],
    )
    header = {**base.header, "trees": {"1": {"parent": PARENT, "depth": DEPTH, "rank": [0, 1, 0, 1, 0, 0, 1]}}}
    return Trace("tree", header, arrays)


def test_schema_2_traces_read_as_chains():
    trace = read_trace(ROOT / "traces" / "smollm2-135m_mxfp4_g4.npz")  # recorded by specsim 2026-12-01
    assert trace.header["schema_version"] == 2 and SCHEMA_VERSION == 4
    assert np.array_equal(trace["round_nodes"], trace["round_drafted"])
    assert trace["op_window"].size == trace["op_kind"].size and not trace["op_window"].any()  # full attention
    assert np.all(trace["round_accepted_node"] == -1) and trace["attn_step"].size == 0


def test_tree_trace_round_trip(tmp_path):
    trace = _tree_trace()
    write_trace(tmp_path / "t.npz", trace.header, trace.arrays)
    back = read_trace(tmp_path / "t.npz")
    assert back.header["schema_version"] == 4 and back.header["trees"]["1"]["parent"] == PARENT
    for name in ("attn_step", "attn_tokens", "attn_kv", "round_nodes", "round_accepted_node"):
        assert np.array_equal(back[name], trace[name])


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda a: a.update(attn_tokens=a["attn_tokens"] + 1), "add up to its tokens"),
        (lambda a: a.update(attn_kv=a["attn_kv"] + 10**6), "add up to its tokens"),
        (lambda a: a.update(round_nodes=np.zeros_like(a["round_nodes"])), "round_nodes"),
        (lambda a: a.update(round_accepted_node=np.full_like(a["round_nodes"], 9)), "round_accepted_node"),
        (
            lambda a: a.update(round_accepted_node=np.where(a["round_accepted"] > 0, 6, -1).astype(np.int16)),
            "node's depth",
        ),
        (lambda a: a.update(attn_step=a["attn_step"][::-1].copy()), "non-decreasing"),
    ],
)
def test_malformed_tree_arrays_are_one_line(tmp_path, edit, says):
    trace = _tree_trace()
    arrays = {k: v.copy() for k, v in trace.arrays.items()}
    edit(arrays)
    with pytest.raises(SpecsimError, match=says):
        write_trace(tmp_path / "bad.npz", trace.header, arrays)
    assert not (tmp_path / "bad.npz").exists()


def _hand_macs(arch, tokens: int, groups: list[tuple[int, int]], logits: int) -> int:
    """MACs of one pass from the architecture alone: every weight once per token; QK^T and PV of each
    attention group over its keys (tokens x keys x head_dim, twice, per head); lm_head per logits row."""
    h, hd, ffn = arch.hidden, arch.head_dim, arch.ffn
    linear = h * arch.heads * hd * 2 + 2 * h * arch.kv_heads * hd + 3 * h * ffn
    attention = sum(t * kv for t, kv in groups) * 2 * arch.heads * hd
    return arch.layers * (tokens * linear + attention) + logits * arch.vocab * h


@pytest.mark.parametrize("batch", [1, 2])
def test_tree_verify_pass_macs_follow_the_mask(batch):
    """A tree verify pass of T nodes: T x the weights plus the masked attention work (each depth's nodes
    over the context and their ancestors), not T x (past + T) of a dense pass."""
    arch = load_architecture("smollm2-135m")
    trace = _tree_trace()
    cfg = load_run_config(ROOT / "hwconfigs" / "speq.yaml", [f"decoding.batch={batch}"])
    acc = accelerators(cfg)[0]
    prep = prepare(acc, trace, "tree")
    s = prep.schedule
    table, starts = pass_table(prep, tuple(acc.hardware.modes))
    c = table.columns
    macs = np.add.reduceat(
        np.where(np.isin(c["kind"], (KIND_GEMM, KIND_KV_GEMM)), c["m"] * c["n"] * c["k"] * c["batch"], 0), starts
    )
    verify = np.flatnonzero(s.pass_phase == PHASES.index("verify"))
    assert verify.size
    for k in verify:
        members = np.flatnonzero(s.member_pass == k)
        hand = 0
        for i in members:
            mine = s.group_member == i
            groups = list(zip(s.group_tokens[mine].tolist(), s.group_kv[mine].tolist()))
            # the context once for all 8 tokens, then the uncached token and each depth over the new keys
            assert groups == [(8, int(s.member_past[i])), (1, 1), (2, 2), (3, 3), (2, 4)]
            hand += _hand_macs(arch, int(s.member_tokens[i]), groups, int(s.member_logits[i]))
        assert macs[k] == hand
        dense = sum(_hand_macs(arch, 8, [(8, int(s.member_past[i]) + 8)], 8) for i in members)
        assert macs[k] < dense


def test_the_mask_saves_attention_against_a_dense_pass_of_the_same_tokens():
    """Replayed, the tree verify pass does the masked work; without its groups the same pass attends
    densely (every token over past + tokens) and does more. Both fetch the cached K/V once (the DRAM
    bytes differ only by the new keys the mask groups read); the masked pass runs each depth group as
    its own small GEMM, so its cycles are not asserted lower (docs/runs.md#token-trees)."""
    cfg = load_run_config(ROOT / "hwconfigs" / "speq.yaml")
    acc = accelerators(cfg)[0]
    trace = _tree_trace()
    dense = Trace("dense", trace.header, {k: v for k, v in trace.arrays.items() if not k.startswith("attn_")})
    tree_verify = replay(acc, trace, "tree").pass_stats(0, "verify")
    dense_verify = replay(acc, dense, "dense").pass_stats(0, "verify")
    assert tree_verify.count == dense_verify.count > 0
    assert tree_verify.mean_macs < dense_verify.mean_macs
    assert tree_verify.mean_dram_bytes == pytest.approx(dense_verify.mean_dram_bytes, rel=1e-3)


def test_tree_statistics_by_depth_and_sibling_rank(tmp_path, capsys):
    from specsim.cli.main import main
    from specsim.trace.tracefile import tree_summaries

    trace = _tree_trace()
    (t,) = tree_summaries(trace)
    acc = trace["round_accepted"][trace["round_level"] == 0]
    assert t.depth == 3 and t.nodes == 7 and t.rounds == acc.size
    assert t.accepted_histogram == np.bincount(acc, minlength=4).tolist()
    assert t.depth_acceptance[0] == pytest.approx((acc >= 1).mean())
    # every accepted path runs through node 0 (rank 0) and node 2 (rank 0), then node 5 (rank 0)
    assert t.rank_share[0] == [1.0, 0.0] and t.rank_share[1] == [1.0, 0.0] and t.rank_share[2] == [1.0, 0.0]
    write_trace(tmp_path / "t.npz", trace.header, trace.arrays)
    assert main(["trace", "--inspect", str(tmp_path / "t.npz")]) == 0
    assert "acceptance by depth" in capsys.readouterr().out
