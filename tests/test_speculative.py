"""Speculative decoding: greedy equals the target's greedy output; rejection sampling is lossless."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from specsim.errors import SpecsimError
from specsim.workload.models import round_linear_weights_to_fp16
from specsim.workload.speculative import (
    SamplingConfig,
    _accept,
    autoregressive_generate,
    build_draft,
    speculative_generate,
)


def tiny_llama(vocab=97, hidden=64, layers=2, init=0.3, seed=0):
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, initializer_range=init,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    round_linear_weights_to_fp16(model)
    return model


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama()


@pytest.mark.parametrize("scheme", ["speq", "speq:e3_row", "mxfp4", "int4"])
def test_greedy_output_equals_target_greedy_for_gamma_1_to_8(tiny, scheme):
    draft = build_draft(tiny, scheme)
    for prompt in ([1, 5, 7], [3, 3, 3, 3, 9, 11, 2]):
        reference = autoregressive_generate(tiny, prompt, 40)
        for gamma in range(1, 9):
            out = speculative_generate(tiny, draft, prompt, gamma, 40)
            assert out.tokens == reference, (scheme, gamma)
            assert all(0 <= r.accepted <= gamma for r in out.rounds)


def test_identical_draft_accepts_everything(tiny):
    out = speculative_generate(tiny, tiny, [1, 2, 3], 4, 30)
    assert all(r.accepted == 4 and r.bonus for r in out.rounds)
    assert out.mean_tokens_per_round == 5


def _chi2_critical(df: int, z: float = 3.09) -> float:
    """Upper 0.1 % quantile of chi-square(df) (Wilson-Hilferty approximation)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _chi2(counts: torch.Tensor, p: torch.Tensor) -> tuple[float, int]:
    n = counts.sum()
    expected = n * p
    big = expected >= 5
    obs = torch.cat([counts[big], counts[~big].sum().reshape(1)])
    exp = torch.cat([expected[big], expected[~big].sum().reshape(1)])
    keep = exp > 0
    stat = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    return stat, int(keep.sum()) - 1


def test_accept_rule_is_lossless_on_synthetic_distributions():
    g = torch.Generator().manual_seed(0)
    vocab = 12
    p = torch.softmax(torch.randn(vocab, generator=g, dtype=torch.float64) * 2, 0)
    q = torch.softmax(torch.randn(vocab, generator=g, dtype=torch.float64) * 2, 0)
    cfg = SamplingConfig("sample")
    logits = torch.log(p).float().reshape(1, -1).repeat(2, 1)
    logits_q = torch.log(q)
    n = 20000
    counts = torch.zeros(vocab, dtype=torch.float64)
    draft_counts = torch.zeros(vocab, dtype=torch.float64)
    for _ in range(n):
        x = int(torch.multinomial(q, 1, generator=g))
        accepted, extra = _accept([x], [cfg.probs(logits_q.float())], logits, cfg, g)
        counts[x if accepted else extra] += 1
        draft_counts[x] += 1
    stat, df = _chi2(counts, cfg.probs(logits[0]))
    assert stat < _chi2_critical(df)
    bad, df_bad = _chi2(draft_counts, cfg.probs(logits[0]))  # the test can fail: draft samples are not p
    assert bad > _chi2_critical(df_bad)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_speculative_sampling_matches_target_distribution_on_tiny_model(temperature, top_p):
    target = tiny_llama(vocab=16, hidden=32, layers=1, init=0.15, seed=1)
    draft = build_draft(target, "int4")
    cfg = SamplingConfig("sample", temperature, top_p)
    prompt = [1, 2]
    with torch.no_grad():  # exact target distribution of the 2nd generated token is hard; test the 1st
        p = cfg.probs(target(torch.tensor([prompt])).logits[0, -1].float())
    n = 3000
    counts = torch.zeros(16, dtype=torch.float64)
    for seed in range(n):
        out = speculative_generate(target, draft, prompt, 3, 1, cfg, seed=seed)
        counts[out.tokens[0]] += 1
    stat, df = _chi2(counts, p)
    assert stat < _chi2_critical(df)


def test_bad_settings_are_user_errors(tiny):
    with pytest.raises(SpecsimError):
        SamplingConfig("beam")
    with pytest.raises(SpecsimError):
        SamplingConfig("sample", temperature=0)
    with pytest.raises(SpecsimError):
        speculative_generate(tiny, tiny, [1], 0, 4)
    with pytest.raises(SpecsimError):
        build_draft(tiny, "fp3")
