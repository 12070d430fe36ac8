"""Speculative decoding: greedy equals the target's greedy output; rejection sampling is lossless."""

import math

import pytest
import torch
from tiny import tiny_llama

from specsim.errors import SpecsimError
from specsim.workload.drafts import build_draft, build_scheme
from specsim.workload.speculative import (
    SamplingConfig,
    _accept,
    autoregressive_generate,
    speculative_generate,
    speculative_round,
)


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama()


@pytest.mark.parametrize(
    "scheme",
    ["speq", "mxfp4", *(pytest.param(s, marks=pytest.mark.slow) for s in ("speq:e3_row", "int4_g128"))],
)
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
        accepted, extra, _ = _accept([x], [cfg.probs(logits_q.float())], logits, cfg, g)
        counts[x if accepted else extra] += 1
        draft_counts[x] += 1
    stat, df = _chi2(counts, cfg.probs(logits[0]))
    assert stat < _chi2_critical(df)
    bad, df_bad = _chi2(draft_counts, cfg.probs(logits[0]))  # the test can fail: draft samples are not p
    assert bad > _chi2_critical(df_bad)


@pytest.mark.parametrize(
    "temperature,top_p,scheme",
    [
        (1.0, 1.0, "view:int4"),
        pytest.param(0.7, 0.9, "view:int4", marks=pytest.mark.slow),
        pytest.param(1.0, 1.0, "int4>int3_g32", marks=pytest.mark.slow),
    ],
)
def test_speculative_sampling_matches_target_distribution_on_tiny_model(temperature, top_p, scheme):
    target = tiny_llama(vocab=16, hidden=32, layers=1, init=0.15, seed=1)
    draft = build_scheme(target, scheme).drafts
    cfg = SamplingConfig("sample", temperature, top_p)
    prompt = [1, 2]
    with torch.no_grad():
        p = cfg.probs(target(torch.tensor([prompt])).logits[0, -1].float())
    n = 3000
    counts = torch.zeros(16, dtype=torch.float64)
    for seed in range(n):  # the first token of a draft-verify round after a fixed prefix
        counts[speculative_round(target, draft, prompt, 3, cfg, seed=seed)[0]] += 1
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
