"""Gemma 3 and sliding-window attention: speculative decoding stays lossless past the window, the hooked
operator template (with windows) equals the shape-derived one, and the window rule the template uses is the
one the model's attention masks apply.

The fast tests use a tiny random Gemma 3 (window 4, every 2nd layer full); the ``model`` ones the real
Gemma 3 270M (``--model gemma3-270m``; window 512 in 15 of 18 layers).
"""

import pytest
import torch
from tiny import tiny_gemma3

from specsim.trace.architectures import Architecture, load_architecture
from specsim.trace.operators import architecture_template
from specsim.workload.drafts import build_scheme
from specsim.workload.optrace import OpRecorder
from specsim.workload.speculative import autoregressive_generate, speculative_generate

TINY_GEMMA = Architecture(
    "tiny-gemma3",
    "gemma3",
    hidden=64,
    layers=4,
    heads=4,
    kv_heads=1,
    ffn=128,
    vocab=97,
    tied_embeddings=True,
    head_dim=32,
    sliding_window=4,
    sliding_window_pattern=2,
)
PROMPT = [3, 5, 7, 9, 11, 2, 4, 6, 8]  # 9 tokens: past the window of 4 from the prefill on


def hand_window_keys(past: int, tokens: int, window: int) -> int:
    """Keys the ``tokens`` queries after ``past`` cached ones attend together: query i (position past + i)
    sees positions past + i - window + 1 .. past + i, so together they see from max(0, past - window + 1)
    to past + tokens - 1."""
    if not window:
        return past + tokens
    return past + tokens - max(0, past - window + 1)


@pytest.fixture(scope="module")
def tiny():
    return tiny_gemma3()


@pytest.mark.parametrize("scheme", ["speq", "mxfp4", "mxfp4>int3_g32", "tree(speq,fork4)", "tree(mxfp4,eagle)"])
def test_tiny_gemma_speculative_greedy_equals_its_greedy_past_the_window(tiny, scheme):
    """Rejected drafts are cropped off every layer's cache (all full-length DynamicLayers; the window is
    the mask's), and tree passes cut their mask to the window in sliding layers: the output is the model's
    own greedy output token for token, far past the 4-token window."""
    reference = autoregressive_generate(tiny, PROMPT, 30)
    built = build_scheme(tiny, scheme)
    out = speculative_generate(built.target, built.drafts, PROMPT, [4, 2][: len(built.drafts)], 30, trees=built.trees)
    assert out.tokens == reference
    assert any(r.accepted < r.drafted for r in out.rounds)  # rejections happened, so the caches were cut back


def test_tiny_gemma_hooked_template_equals_the_shape_template_with_windows(tiny):
    built = build_scheme(tiny, "speq")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    try:
        speculative_generate(built.target, built.drafts, PROMPT, 3, 20, observer=recorder)
    finally:
        recorder.remove()
    assert recorder.templates == {
        0: architecture_template(TINY_GEMMA, "fp16"),
        1: architecture_template(TINY_GEMMA, built.level_formats[1]),
    }
    windows = {op.layer: op.window for op in recorder.templates[0] if op.kind == "attn_qk"}
    assert windows == {0: 4, 1: 0, 2: 4, 3: 0}
    names = [op.name for op in recorder.templates[0] if op.layer == 0]
    assert names[4:6] == ["q_norm", "k_norm"] and names[-1] == "post_feedforward_layernorm"
    assert recorder.observed >= 3  # passes past the window were checked against the masks' keys


def _mask_keys(model, ids_steps):
    """Per step: for each layer hooked, (keys attended per query, keys attended by any query) as the
    attention mask given to that layer's attention shows them (None: no mask, a causal kernel)."""
    from transformers import DynamicCache

    seen: dict[int, torch.Tensor | None] = {}

    def pre(module, args, kwargs):
        seen[module.layer_idx] = kwargs.get("attention_mask")

    layers = model.model.layers
    hooks = [layer.self_attn.register_forward_pre_hook(pre, with_kwargs=True) for layer in layers]
    cache = DynamicCache()
    out = []
    try:
        with torch.inference_mode():
            for ids in ids_steps:
                model(torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1)
                step = {}
                for idx, mask in seen.items():
                    if mask is None:
                        step[idx] = None
                        continue
                    allowed = mask[0, 0] if mask.dtype == torch.bool else mask[0, 0] == 0
                    step[idx] = (allowed.sum(-1).tolist(), int(allowed.any(0).sum()))
                out.append(step)
    finally:
        for h in hooks:
            h.remove()
    return out


def test_tiny_gemma_masks_follow_the_window_rule(tiny):
    steps = [PROMPT, [1], [2, 3, 4]]
    past = [0, len(PROMPT), len(PROMPT) + 1]
    for step, ids, p in zip(_mask_keys(tiny, steps), steps, past):
        for layer in (0, 2):  # sliding layers: each query sees at most 4 keys, together min(P + T, 4 + T - 1)
            per_query, together = step[layer]
            assert per_query == [min(p + i + 1, 4) for i in range(len(ids))]
            assert together == hand_window_keys(p, len(ids), 4)


# -- the real Gemma 3 270M -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gemma():
    from specsim.workload.models import load_model

    return load_model("gemma3-270m")


@pytest.mark.model
def test_gemma_is_the_architecture_of_its_shape_file(gemma):
    cfg = gemma.model.config
    arch = load_architecture("gemma3-270m")
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (
        arch.hidden,
        arch.layers,
        arch.heads,
        arch.kv_heads,
    )
    assert (cfg.head_dim, cfg.intermediate_size, cfg.vocab_size) == (arch.head_dim, arch.ffn, arch.vocab)
    assert cfg.sliding_window == arch.sliding_window == 512
    assert [t == "sliding_attention" for t in cfg.layer_types] == [arch.window(i) > 0 for i in range(18)]
    assert sum(t == "sliding_attention" for t in cfg.layer_types) == 15
    assert cfg.tie_word_embeddings and gemma.model.lm_head.weight.shape == (262144, 640)
    assert gemma.model.lm_head.weight.data_ptr() == gemma.model.model.embed_tokens.weight.data_ptr()


@pytest.mark.model
@pytest.mark.parametrize("scheme", ["speq", "mxfp4"])
def test_gemma_greedy_speculative_output_equals_its_own_greedy_output(gemma, scheme):
    built = build_scheme(gemma.model, scheme)
    for text in ("The capital of France is", "def fibonacci(n):", "Water boils at"):
        ids = gemma.tokenizer(text).input_ids
        reference = autoregressive_generate(gemma.model, ids, 16)
        out = speculative_generate(built.target, built.drafts, ids, 4, 16)
        assert out.tokens == reference, text


@pytest.mark.model
def test_gemma_speculation_past_the_window_and_its_masks(gemma):
    """A 530-token context: SPEQ's greedy output still equals Gemma's own, the hooked template checks every
    observed pass's keys against the window rule, and a sliding layer's mask lets each query see 512 keys
    and a 3-token step 514 together (= min(P + T, w + T - 1)); a full layer sees all P + T."""
    text = " ".join(f"item {i} is {i * 7 % 13}." for i in range(120))
    ids = gemma.tokenizer(text).input_ids[:530]
    assert len(ids) == 530
    built = build_scheme(gemma.model, "speq")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    try:
        out = speculative_generate(built.target, built.drafts, ids, 4, 12, observer=recorder)
    finally:
        recorder.remove()
    assert out.tokens == autoregressive_generate(gemma.model, ids, 12)
    arch = load_architecture("gemma3-270m")
    assert recorder.templates[0] == architecture_template(arch, "fp16")
    steps = _mask_keys(gemma.model, [ids, [ids[-1]], ids[-3:]])
    for step, (p, t) in zip(steps, [(0, 530), (530, 1), (531, 3)]):
        per_query, together = step[0]  # layer 0: sliding
        assert max(per_query) == min(p + t, 512) and together == hand_window_keys(p, t, 512)
        full = step[5]  # layer 5: full attention (no mask at all: a causal kernel over every key)
        assert full is None or full[1] == p + t
    assert steps[2][0][1] == 514


@pytest.mark.model
def test_gemma_hooked_template_equals_its_architecture_file(gemma):
    built = build_scheme(gemma.model, "speq")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    try:
        speculative_generate(built.target, built.drafts, gemma.tokenizer("Once upon a time").input_ids, 4, 12,
                             observer=recorder)  # fmt: skip
    finally:
        recorder.remove()
    arch = load_architecture("gemma3-270m")
    assert recorder.templates == {
        0: architecture_template(arch, "fp16"),
        1: architecture_template(arch, built.level_formats[1]),
    }


# -- Mistral: one window in every layer (config.sliding_window, no layer_types) ---------------------------

TINY_MISTRAL = Architecture("tiny-mistral", "llama", 64, 2, 4, 2, 128, 97, False, sliding_window=4)


@pytest.fixture(scope="module")
def mistral():
    from tiny import tiny_mistral

    return tiny_mistral()


def test_tiny_mistral_windows_every_layer_in_its_template_and_masks(mistral):
    built = build_scheme(mistral, "speq")
    recorder = OpRecorder([built.target, *built.drafts], built.level_formats)
    try:
        out = speculative_generate(built.target, built.drafts, PROMPT, 3, 20, observer=recorder)
    finally:
        recorder.remove()
    assert out.tokens == autoregressive_generate(mistral, PROMPT, 20)
    assert recorder.templates[0] == architecture_template(TINY_MISTRAL, "fp16")
    assert {op.layer: op.window for op in recorder.templates[0] if op.kind == "attn_qk"} == {0: 4, 1: 4}
    assert recorder.observed >= 3
    steps = [PROMPT, [1], [2, 3, 4]]
    for step, ids, p in zip(_mask_keys(mistral, steps), steps, [0, len(PROMPT), len(PROMPT) + 1]):
        for layer in (0, 1):
            per_query, together = step[layer]
            assert per_query == [min(p + i + 1, 4) for i in range(len(ids))]
            assert together == hand_window_keys(p, len(ids), 4)


@pytest.mark.parametrize("scheme", ["tree(speq,fork4)", "tree(mxfp4,eagle)"])
def test_tiny_mistral_tree_speculation_past_the_window_is_lossless(mistral, scheme):
    """Tree passes give a Mistral (one mask for all layers) the tree mask cut to its window."""
    reference = autoregressive_generate(mistral, PROMPT, 30)
    built = build_scheme(mistral, scheme)
    out = speculative_generate(built.target, built.drafts, PROMPT, [4], 30, trees=built.trees)
    assert out.tokens == reference
    assert any(r.accepted < r.drafted for r in out.rounds)


@pytest.mark.model
def test_the_assembled_gemma_gguf_by_path_converts_to_the_embedded_model(gemma, tmp_path, monkeypatch, capsys):
    """The second shipped GGUF, assembled from its part packages into a file of the user's, loads with
    ``--model FILE.gguf`` (converted into an empty cache) into the same weights as ``--model gemma3-270m``."""
    from specsim.workload import models

    path = models.assemble_gguf(models.EMBEDDED_MODELS["gemma3-270m"], tmp_path)
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    by_path = models.load_model(str(path), tokenizer=False)
    assert "converting" in capsys.readouterr().err
    for (name, p), (_, q) in zip(by_path.model.named_parameters(), gemma.model.named_parameters(), strict=True):
        assert torch.equal(p, q), name


def test_which_configs_window_every_layer():
    """Mistral (a window, no layer types) windows every layer; a config listing layer types, one keeping an
    unused window (Qwen2's use_sliding_window: false) or none does not; an older Gemma 3 config that
    windows some layers by a pattern without layer types is refused, not windowed everywhere."""
    from types import SimpleNamespace as Config

    from specsim.errors import SpecsimError
    from specsim.workload.speculative import uniform_window

    assert uniform_window(Config(sliding_window=4096)) == 4096
    assert uniform_window(Config(sliding_window=4096, use_sliding_window=False)) == 0
    assert uniform_window(Config(sliding_window=512, layer_types=["sliding_attention", "full_attention"])) == 0
    assert uniform_window(Config()) == 0
    with pytest.raises(SpecsimError, match="sliding_window_pattern"):
        uniform_window(Config(sliding_window=512, sliding_window_pattern=6))
