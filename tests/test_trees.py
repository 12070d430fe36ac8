"""Token trees: shapes, the tree mask against plain causal passes, cache gathers, losslessness (greedy and
multi-step speculative sampling), the draft grammar's tree level and SpecMQuant's hierarchy, recording."""

import pytest
import torch
from test_speculative import _chi2, _chi2_critical
from tiny import tiny_llama

from specsim.errors import SpecsimError
from specsim.workload.drafts import DEFAULT_SPECMQUANT, build_draft, build_scheme, parse_scheme
from specsim.workload.optrace import OpRecorder
from specsim.workload.speculative import (
    SamplingConfig,
    _accept_tree,
    _Stream,
    autoregressive_generate,
    speculative_generate,
    speculative_round,
)
from specsim.workload.trees import (
    MAX_TREE_NODES,
    NAMED_TREES,
    from_branches,
    from_parents,
    from_paths,
    parse_tree,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread (with two, each small op waits on the pool: ~7 ms per softmax on a
    busy 2-core machine, 2 us with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama(layers=1)


# -- shapes --------------------------------------------------------------------------------------


def test_shapes_from_branch_factors_parents_and_paths():
    t = from_branches([2, 3])
    assert t.parent == (-1, -1, 0, 0, 0, 1, 1, 1)
    assert t.depth == (1, 1, 2, 2, 2, 2, 2, 2) and t.rank == (0, 1, 0, 1, 2, 0, 1, 2)
    assert t.children(-1) == [0, 1] and t.path(6) == [1, 6] and t.max_depth == 2
    assert from_parents([-1, -1, 0, 0, 0, 1, 1, 1]).parent == t.parent
    eagle = NAMED_TREES["eagle"]  # EAGLE-1's static tree: 25 nodes + the root
    assert eagle.size == 25 and [len(eagle.at_depth(d)) for d in range(1, 6)] == [4, 8, 8, 3, 2]
    assert eagle.rank[:4] == (0, 1, 2, 3) and eagle.parent[-2:] == (20, 20)
    assert from_paths([(0,), (1,), (0, 0), (0, 0, 0)]).parent == (-1, -1, 0, 2)
    assert parse_tree("4-2-2-1").size == 4 + 8 + 16 + 16 == parse_tree("4,2,2,1").size
    assert parse_tree("p:-1,-1,0").parent == (-1, -1, 0)
    assert all(25 <= NAMED_TREES[n].size <= 60 for n in ("eagle", "eagle-wide", "binary"))
    assert NAMED_TREES["eagle"].header()["depth"][-1] == 5


@pytest.mark.parametrize(
    "bad",
    ["", "0-2", "2.5", "x", "4-4-4-4", "p:", "p:-1,1", "p:-1,-1,0,-1", "p:a", f"p:{','.join(['-1'] * 65)}"],
)
def test_malformed_shapes_are_one_line_user_errors(bad):
    with pytest.raises(SpecsimError) as err:
        parse_tree(bad)
    assert "\n" not in str(err.value) and "tree shape" in str(err.value)


def test_bad_shape_values_from_python():
    for bad in ([], [0], [2, True], [1.5]):
        with pytest.raises(SpecsimError):
            from_branches(bad)
    with pytest.raises(SpecsimError):
        from_parents([-1] * (MAX_TREE_NODES + 1))
    with pytest.raises(SpecsimError):
        from_paths([(0, 0)])  # no parent
    with pytest.raises(SpecsimError):
        from_paths([(1,)])  # no elder sibling


# -- the tree pass against plain causal passes (ground truth) -------------------------------------


def test_tree_pass_logits_equal_causal_passes_over_each_root_path():
    model = tiny_llama()
    shape = NAMED_TREES["eagle"]
    tokens = torch.randint(0, 97, (shape.size,), generator=torch.Generator().manual_seed(0)).tolist()
    prompt = [1, 5, 7, 9]
    stream = _Stream(model)
    stream.feed(prompt[:2], 1, "prefill")
    out = stream.feed_tree(shape, prompt[2:], tokens, [], list(range(shape.size)), "verify")
    with torch.no_grad():
        for node in [-1, *range(shape.size)]:
            ids = prompt + [tokens[j] for j in shape.path(node)]
            ref = model(torch.tensor([ids])).logits[0, -1]
            torch.testing.assert_close(out[node + 1], ref, atol=1e-4, rtol=1e-4)
    # keep one root path: the cache then equals a plain causal prefill of that path
    path = shape.path(20)
    stream.keep(list(range(len(prompt))) + [len(prompt) + i for i in path])
    assert stream.length == len(prompt) + len(path)
    nxt = stream.feed([3], 1, "verify")[-1]
    with torch.no_grad():
        ref = model(torch.tensor([prompt + [tokens[i] for i in path] + [3]])).logits[0, -1]
    torch.testing.assert_close(nxt, ref, atol=1e-4, rtol=1e-4)


def test_draft_expansion_passes_each_depth_once_and_caches_only_the_kept_path():
    model = tiny_llama()
    shape = NAMED_TREES["eagle"]
    passes = []

    class Spy:
        def begin_step(self, level, phase, tokens, past, logits, attention=None):
            passes.append((level, phase, tokens, past, logits, attention))

        def end_step(self):
            pass

    out = speculative_generate(model, build_draft(model, "mxfp4"), [1, 2, 3], 4, 6, observer=Spy(), trees=shape)
    draft = [p for p in passes if p[0] == 1]
    # depth 1: a plain pass catching up (the root's logits); then one tree pass per depth over the
    # nodes that have children (EAGLE: 4, 4, 1, 1 nodes of depths 1-4)
    assert draft[0][1] == "prefill" and draft[0][5] is None and draft[5][5] is None  # next round: catch-up
    assert [p[2] for p in draft[1:5]] == [4, 4, 1, 1]
    assert draft[1][5] == [(4, 4 + 1)] and draft[2][5] == [(4, 4 + 2)] and draft[2][3] == 4 + 4
    verify = [p for p in passes if p[0] == 0 and p[1] == "verify"]
    assert verify[0][2] == 1 + 25 and verify[0][4] == 26
    assert verify[0][5] == [(1, 4), (4, 5), (8, 6), (8, 7), (3, 8), (2, 9)]
    assert all(r.nodes == 25 and r.drafted == 5 and -1 <= r.accepted_node < 25 for r in out.rounds)
    for r in out.rounds:
        assert r.accepted == (len(shape.path(r.accepted_node)) if r.accepted_node >= 0 else 0)


# -- losslessness --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["eagle", "binary", "fork4", "3-1-2", "p:-1,-1,-1,0,2,3"])
def test_greedy_tree_output_equals_target_greedy(tiny, shape):
    draft = build_draft(tiny, "mxfp4")
    prompt = [3, 3, 9, 11, 2]
    out = speculative_generate(tiny, draft, prompt, 4, 24, trees=parse_tree(shape))
    assert out.tokens == autoregressive_generate(tiny, prompt, 24)
    assert any(r.accepted > 0 for r in out.rounds)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [*NAMED_TREES, "1", "6", "2-2", "1-1-1-1-1-1-1-1", "4-2-2-1"])
def test_greedy_tree_output_equals_target_greedy_every_shape(shape):
    tiny = tiny_llama()
    for scheme in ("speq", "int4_g128"):
        draft = build_draft(tiny, scheme)
        for prompt in ([1, 5, 7], [3, 3, 3, 3, 9, 11, 2]):
            out = speculative_generate(tiny, draft, prompt, 4, 40, trees=parse_tree(shape))
            assert out.tokens == autoregressive_generate(tiny, prompt, 40), (scheme, shape)


def test_identical_draft_accepts_the_rank_0_path(tiny):
    shape = NAMED_TREES["eagle"]
    out = speculative_generate(tiny, tiny, [1, 2, 3], 4, 18, trees=shape)
    assert all(r.accepted == 5 and r.bonus and r.accepted_node == 23 for r in out.rounds)


def _bigram_tree_round(shape, P, Q, root, cfg, gen):
    """One tree round with context-free bigram 'models' (next-token rows P[last], Q[last]): the draft samples
    each node's children i.i.d. from Q, the verifier accepts with :func:`_accept_tree`."""
    tokens = [0] * shape.size
    q_rows = [None] * (shape.size + 1)
    for node in [-1, *range(shape.size)]:
        kids = shape.children(node)
        if kids:
            q = Q[root if node < 0 else tokens[node]]
            for kid, tok in zip(kids, torch.multinomial(q, len(kids), replacement=True, generator=gen).tolist()):
                tokens[kid] = tok
            q_rows[node + 1] = q
    logits = torch.log(torch.stack([P[root]] + [P[t] for t in tokens])).float()
    path, extra, _ = _accept_tree(shape, tokens, q_rows, logits, cfg, gen)
    return [tokens[i] for i in path] + [extra], tokens


def test_multi_candidate_rejection_sampling_is_lossless_on_bigram_models():
    """The first two tokens of a tree round follow the verifier's joint distribution; the draft's don't."""
    g = torch.Generator().manual_seed(0)
    vocab = 4
    cfg = SamplingConfig("sample")
    P = torch.softmax(torch.randn(vocab, vocab, generator=g, dtype=torch.float64) * 1.5, -1)
    Q = torch.softmax(torch.randn(vocab, vocab, generator=g, dtype=torch.float64) * 1.5, -1)
    P, Q = cfg.probs(torch.log(P).float()), cfg.probs(torch.log(Q).float())  # what _accept_tree computes
    shape = parse_tree("3-1")
    n = 4000
    counts = torch.zeros(vocab * vocab, dtype=torch.float64)
    draft_counts = torch.zeros(vocab * vocab, dtype=torch.float64)
    for _ in range(n):
        out, tokens = _bigram_tree_round(shape, P, Q, 0, cfg, g)
        if len(out) == 1:  # nothing accepted: the second token comes from the next round (the verifier's P)
            out = out + [int(torch.multinomial(P[out[0]], 1, generator=g))]
        counts[out[0] * vocab + out[1]] += 1
        draft_counts[tokens[0] * vocab + tokens[2]] += 1  # the draft's rank-0 path
    joint = (P[0].reshape(-1, 1) * P).reshape(-1)
    stat, df = _chi2(counts, joint)
    assert stat < _chi2_critical(df)
    bad, df_bad = _chi2(draft_counts, joint)  # negative control: the draft's own samples fail the test
    assert bad > _chi2_critical(df_bad)


def _tree_first_token_counts(target, draft, cfg, prompt, shape, n):
    counts = torch.zeros(target.config.vocab_size, dtype=torch.float64)
    for seed in range(n):
        counts[speculative_round(target, draft, prompt, 3, cfg, seed=seed, trees=shape)[0]] += 1
    return counts


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), pytest.param(0.7, 0.9, marks=pytest.mark.slow)])
def test_tree_sampling_matches_target_distribution_on_tiny_model(temperature, top_p):
    """First speculated position of a tree round, many seeds (as in test_speculative), with a negative
    control: the draft's own first child (sampled from q) fails the same test."""
    target = tiny_llama(vocab=16, hidden=32, layers=1, init=0.15, seed=1)
    draft = tiny_llama(vocab=16, hidden=32, layers=1, init=0.15, seed=2)  # an independent draft: q far from p
    cfg = SamplingConfig("sample", temperature, top_p)
    prompt = [1, 2]
    with torch.no_grad():
        p = cfg.probs(target(torch.tensor([prompt])).logits[0, -1].float())
        q = cfg.probs(draft(torch.tensor([prompt])).logits[0, -1].float())
    assert float((p - q).abs().sum()) > 0.5  # the draft really differs from the target
    n = 2000
    stat, df = _chi2(_tree_first_token_counts(target, draft, cfg, prompt, parse_tree("3-2"), n), p)
    assert stat < _chi2_critical(df)
    g = torch.Generator().manual_seed(0)
    draft_counts = torch.bincount(torch.multinomial(q, n, replacement=True, generator=g), minlength=16).double()
    bad, df_bad = _chi2(draft_counts, p)
    assert bad > _chi2_critical(df_bad)


def test_tree_sampling_runs_and_stays_in_range(tiny):
    cfg = SamplingConfig("sample", 0.8, 0.95)
    out = speculative_generate(tiny, build_draft(tiny, "int4_g128"), [1, 2, 3], 4, 16, cfg, trees=NAMED_TREES["fork4"])
    assert len(out.tokens) == 16
    assert all(0 <= r.accepted <= r.drafted and r.nodes == 4 for r in out.rounds)


# -- grammar, hierarchy ---------------------------------------------------------------------------


def test_tree_grammar_and_unsupported_orders():
    plan = parse_scheme("tree(mxfp4,4-2-2-1)")
    assert plan.levels == ("tree(mxfp4,4-2-2-1)",)
    h = parse_scheme(DEFAULT_SPECMQUANT)
    assert h.target == "int4_g128" and h.levels == ("int3_g32", "tree(early:15:int3_g32,eagle)")
    for bad in ("tree(speq,eagle)>int3_g32", "tree(speq)", "tree(speq,0-1)", "tree(fp7,eagle)", "tree(speq,eagle"):
        with pytest.raises(SpecsimError) as err:
            parse_scheme(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(SpecsimError):
        speculative_generate(tiny_llama(layers=1), [tiny_llama(layers=1)] * 2, [1], 2, 2, trees=[parse_tree("2"), None])


def test_specmquant_hierarchy_is_lossless_for_the_4bit_target():
    tiny = tiny_llama(layers=3)
    built = build_scheme(tiny, "hierarchical:int4_g128/int3_g32>tree(early:1:int3_g32,eagle)")
    assert built.trees[0] is None and built.trees[1].name == "eagle"
    reference = autoregressive_generate(built.target, [2, 4, 6], 20)
    out = speculative_generate(built.target, built.drafts, [2, 4, 6], [4, 1], 20, trees=built.trees)
    assert out.tokens == reference
    assert {r.level for r in out.rounds} == {0, 1}
    assert all(r.nodes == 25 for r in out.rounds if r.level == 1)
    assert all(r.nodes == r.drafted == 4 and r.accepted_node == -1 for r in out.rounds if r.level == 0)


# -- recording -----------------------------------------------------------------------------------


def test_operand_recorder_checks_tree_passes_and_records_attention_groups(tiny):
    built = build_scheme(tiny, "tree(mxfp4,3-2)")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    speculative_generate(built.target, built.drafts, [4, 5, 6], 4, 10, observer=recorder, trees=built.trees)
    recorder.remove()
    tree_steps = [s for s in recorder.steps if s.attention]
    assert recorder.observed >= 4 and tree_steps  # tree passes were observed through hooks and checked
    attn = recorder.attention_arrays()
    assert len(attn["attn_step"]) == sum(len(s.attention) for s in recorder.steps)
    for i, s in enumerate(recorder.steps):
        rows = attn["attn_step"] == i
        assert not rows.any() or attn["attn_tokens"][rows].sum() == s.tokens
        assert (attn["attn_kv"][rows] <= s.past + s.tokens).all()
    with pytest.raises(SpecsimError):
        recorder.begin_step(0, "verify", 3, 10, 3, attention=[(1, 11), (1, 20)])


# -- SmolLM2-135M ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    from specsim.workload.models import load_model

    return load_model("smollm2-135m")


@pytest.mark.model
def test_tree_pass_matches_causal_passes_on_real_model(smollm2):
    model = smollm2.model
    shape = parse_tree("2-2")
    prompt = smollm2.tokenizer("The capital of France is").input_ids
    tokens = [12, 345, 678, 910, 1112, 1314]
    stream = _Stream(model)
    stream.feed(prompt[:-1], 1, "prefill")
    out = stream.feed_tree(shape, prompt[-1:], tokens, [], list(range(shape.size)), "verify")
    with torch.no_grad():
        for node in [-1, *range(shape.size)]:
            ref = model(torch.tensor([prompt + [tokens[j] for j in shape.path(node)]])).logits[0, -1]
            torch.testing.assert_close(out[node + 1], ref, atol=2e-3, rtol=1e-3)


@pytest.mark.model
@pytest.mark.parametrize(
    "scheme",
    [*(f"tree(speq,{name})" for name in NAMED_TREES), "tree(mxfp4,4-2-2-1)", "tree(mxfp4,eagle)", "tree(speq,3-1-2)"],
)
def test_greedy_tree_output_equals_target_greedy_on_real_model(smollm2, scheme):
    from specsim.workload.prompts import encode_prompt

    built = build_scheme(smollm2.model, scheme)
    for text in ("Question: what is the capital of Italy? Answer:", "def fibonacci(n):"):
        prompt = encode_prompt(smollm2.tokenizer, text)
        out = speculative_generate(built.target, built.drafts, prompt, 4, 16, trees=built.trees)
        assert out.tokens == autoregressive_generate(built.target, prompt, 16), (scheme, text)
        assert sum(r.accepted for r in out.rounds) > 0


@pytest.mark.model
def test_specmquant_hierarchy_on_real_model(smollm2):
    from specsim.workload.prompts import encode_prompt

    built = build_scheme(smollm2.model, DEFAULT_SPECMQUANT)
    prompt = encode_prompt(smollm2.tokenizer, "Question: what is the capital of Italy? Answer:")
    out = speculative_generate(built.target, built.drafts, prompt, [4, 1], 12, trees=built.trees)
    assert out.tokens == autoregressive_generate(built.target, prompt, 12)


@pytest.mark.model
def test_tree_trace_round_trips_with_schema_3(tmp_path):
    from specsim.trace.tracefile import read_trace, tree_summaries, write_trace
    from specsim.workload.capture import CaptureConfig, capture

    cfg = CaptureConfig(draft="tree(speq,eagle)", limit=1, max_new_tokens=8, layer_stats=False)
    header, arrays = capture(cfg, progress=False)
    assert header["trees"]["1"]["parent"] == list(NAMED_TREES["eagle"].parent)
    assert arrays["attn_step"].size and (arrays["round_nodes"] == 25).all()
    write_trace(tmp_path / "t.npz", header, arrays)
    trace = read_trace(tmp_path / "t.npz")
    assert len(tree_summaries(trace)) == 1


@pytest.mark.parametrize(
    "draft, says",
    [
        ("tree(speq,0-2)", "positive integers"),
        ("tree(speq,9-9-9)", "over 64 nodes"),
        ("tree(speq,eagle)>mxfp4", "must be the bottom level"),
        ("tree(speq", "expected tree("),
    ],
)
def test_bad_tree_on_the_command_line_is_one_line_exit_2_nothing_written(tmp_path, capsys, draft, says):
    from specsim.cli.main import main

    out = tmp_path / "t.npz"
    assert main(["trace", "--draft", draft, "--limit", "1", "--max-new-tokens", "4", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and not out.exists()
