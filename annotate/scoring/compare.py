"""Comparing models pairwise: a paired bootstrap on the banded score, McNemar on correctness."""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from annotate.scoring.score import Comparison, bootstrap_mean, model_seed

if TYPE_CHECKING:
    from annotate.scoring.score import Gold, ModelInput


def mcnemar_exact(a_only: int, b_only: int) -> float | None:
    """Two-sided exact McNemar p-value: the binomial test of a_only against a_only + b_only."""
    n = a_only + b_only
    if n == 0:
        return None
    k = min(a_only, b_only)
    # P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so large n does not overflow.
    # log C(n, i) rises with i up to k <= n / 2; terms more than 746 below the top add exactly
    # 0.0 (exp underflows), so only the terms within that window are computed.
    top = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    window = []
    for i in range(k, -1, -1):
        x = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
        if x - top < -746:
            break
        window.append(x)
    top = max(window)
    total = sum(math.exp(x - top) for x in reversed(window))
    tail = math.exp(top + math.log(total) - n * math.log(2))
    return round(min(1.0, 2 * tail), 6)


def _credits(gold: Gold, model: ModelInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    codes = np.asarray(model.codes, dtype=np.int64)
    scored = codes >= 0
    safe = np.where(scored, codes, 0)
    leaked = np.zeros(len(codes), bool) if model.leaked is None else np.asarray(model.leaked)
    credit = np.where(leaked, 0.0, gold.credit[np.arange(len(codes)), safe])
    correct = (codes == gold.right) & ~leaked
    return scored, credit, correct


def compare(
    gold: Gold,
    name_a: str,
    a: ModelInput,
    name_b: str,
    b: ModelInput,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Model a against model b on the items both predicted (see Comparison)."""
    scored_a, credit_a, correct_a = _credits(gold, a)
    scored_b, credit_b, correct_b = _credits(gold, b)
    both = scored_a & scored_b
    diff = (credit_a - credit_b)[both]
    ci = bootstrap_mean(diff, n_resamples, confidence, model_seed(seed, name_a, name_b))
    a_only = int((correct_a & ~correct_b & both).sum())
    b_only = int((correct_b & ~correct_a & both).sum())
    mean = round(float(diff.mean()), 6) if len(diff) else None
    if ci is not None and ci[0] > 0:
        verdict = f"{name_a} beats {name_b}"
    elif ci is not None and ci[1] < 0:
        verdict = f"{name_b} beats {name_a}"
    elif ci is None:
        verdict = "no interval (no shared items or no resamples)"
    else:
        verdict = "no difference detectable"
    return Comparison(
        a=name_a,
        b=name_b,
        n=int(both.sum()),
        diff=mean,
        ci=ci,
        a_only=a_only,
        b_only=b_only,
        p_value=mcnemar_exact(a_only, b_only),
        verdict=verdict,
    )


def compare_all(
    gold: Gold,
    models: Mapping[str, ModelInput],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Comparison]:
    """Every pair of models, in the order given."""
    return [
        compare(
            gold,
            x,
            models[x],
            y,
            models[y],
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        for x, y in combinations(models, 2)
    ]
