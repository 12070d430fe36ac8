"""Confidence intervals for ratios of per-token costs (speedups, energy efficiency) and their geomeans.

A speedup is a ratio of ratios of sums over the sequences (prompts) of a workload:
``S = (sum B_i / sum b_i) / (sum M_i / sum m_i)``, with ``B_i``/``M_i`` the baseline's and the main
accelerator's decode cycles (or energy) on sequence ``i`` and ``b_i``/``m_i`` their decode tokens.
Sequences are the sampling unit: the prompts of a real trace (paired: both accelerators decode the
same prompts), or the independent replicas of a shape workload's sampled acceptance. The interval is
the delta method on ``log S`` (the standard interval of a ratio estimator): each sequence's
influence is ``z_i = B_i/mean(B) - b_i/mean(b) - M_i/mean(M) + m_i/mean(m)``, the standard error of
``log S`` is ``sd(z) / sqrt(n)``, and the interval is ``S * exp(+- t(n-1) * se)`` with Student's t (its quantile
computed exactly, for fractional degrees of freedom too).
One sequence gives no interval. A geometric mean over workloads adds the log-scale variances
(workloads are sampled independently) with Welch-Satterthwaite degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1.0 - _betainc(b, a, 1.0 - x)
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * f


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function with ``df`` (any positive real) degrees of freedom."""
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile for any positive real ``df`` (Welch-Satterthwaite gives fractional ones):
    the t CDF inverted by bisection to 1e-12; the normal quantile for infinite ``df``."""
    if not df > 0 or not 0 < p < 1:
        raise ValueError("t_quantile: df > 0 and 0 < p < 1")
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    if p < 0.5:
        return -t_quantile(1 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Estimate:
    """A ratio with its confidence interval (``low``/``high`` None when it cannot be estimated)."""

    value: float
    low: float | None = None
    high: float | None = None
    se_log: float | None = None  #: standard error of log(value)
    df: float | None = None  #: degrees of freedom of that error
    n: int = 1  #: sequences behind it


def ratio_of_ratios(
    base_cost: np.ndarray, base_tokens: np.ndarray, main_cost: np.ndarray, main_tokens: np.ndarray, level: float
) -> Estimate:
    """``(sum base_cost / sum base_tokens) / (sum main_cost / sum main_tokens)`` over paired sequences,
    with its ``level`` confidence interval (see the module docstring)."""
    arrays = [np.asarray(a, dtype=float) for a in (base_cost, base_tokens, main_cost, main_tokens)]
    b, bt, m, mt = arrays
    value = float((b.sum() / bt.sum()) / (m.sum() / mt.sum()))
    n = len(b)
    if n < 2:
        return Estimate(value, n=n)
    z = b / b.mean() - bt / bt.mean() - m / m.mean() + mt / mt.mean()
    se = float(z.std(ddof=1) / math.sqrt(n))
    return _interval(value, se, n - 1, level, n)


def _interval(value: float, se: float, df: float, level: float, n: int) -> Estimate:
    half = t_quantile(0.5 + level / 2, df) * se if se > 0 else 0.0
    return Estimate(value, value * math.exp(-half), value * math.exp(half), se, df, n)


def geometric_mean(values: Iterable[float]) -> float:
    """``exp(mean(log v))`` of positive ``values`` (the point estimate every geomean of specsim uses); NaN
    when there are none. Callers drop the values that do not apply (missing, not finite) first."""
    logs = [math.log(v) for v in values]
    return math.exp(sum(logs) / len(logs)) if logs else math.nan


def geomean(estimates: list[Estimate], level: float) -> Estimate:
    """Geometric mean of independent estimates; its interval when every one of them has one."""
    value = geometric_mean(e.value for e in estimates)
    n = min(e.n for e in estimates)
    if any(e.se_log is None for e in estimates):
        return Estimate(value, n=n)
    var = sum(e.se_log**2 for e in estimates) / len(estimates) ** 2
    if var == 0:
        return Estimate(value, value, value, 0.0, math.inf, n)
    df = var**2 / sum((e.se_log**2 / len(estimates) ** 2) ** 2 / e.df for e in estimates if e.se_log > 0)
    return _interval(value, math.sqrt(var), df, level, n)
