"""How far an automatic judge's action labels agree with the human gold observed action (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from annotate import stats

if TYPE_CHECKING:
    from annotate.scoring.score import Gold


class JudgeAlignment(BaseModel):
    """A judge's action labels against the human gold `observed_action` of the same responses.

    `n` counts items with both; `agreement` is the exact-match share; `alpha` nominal
    Krippendorff's alpha (gold and judge as two coders) with a bootstrap interval;
    `confusion[gold][judge]` counts items, over the actions either side used.
    """

    n: int
    agreement: float | None
    alpha: float | None
    alpha_ci: tuple[float, float] | None
    confusion: dict[str, dict[str, int]]


def judge_alignment(
    gold: Gold,
    codes: npt.NDArray[np.int64],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> JudgeAlignment:
    """Agreement of judge labels `codes` with the gold observed action (see JudgeAlignment)."""
    both = (codes >= 0) & (gold.observed >= 0)
    human, judge = gold.observed[both], codes[both]
    n_actions = len(gold.actions)
    matrix = np.bincount(human * n_actions + judge, minlength=n_actions**2).reshape(
        n_actions, n_actions
    )
    used = [a for i, a in enumerate(gold.actions) if matrix[i].sum() or matrix[:, i].sum()]
    index = {a: gold.actions.index(a) for a in used}
    estimate = (
        stats.bootstrap_alpha(
            np.array(
                [[gold.actions[c] for c in human], [gold.actions[c] for c in judge]], dtype=object
            ),
            "nominal",
            labels=gold.actions,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        if both.any()
        else None
    )
    agreement = round(float((human == judge).mean()), 6) if both.any() else None
    return JudgeAlignment(
        n=int(both.sum()),
        agreement=agreement,
        alpha=None if estimate is None or estimate.alpha is None else round(estimate.alpha, 6),
        alpha_ci=None
        if estimate is None or estimate.ci is None
        else (round(estimate.ci[0], 6), round(estimate.ci[1], 6)),
        confusion={g: {j: int(matrix[index[g], index[j]]) for j in used} for g in used},
    )


# Krippendorff's conventional cut-offs: 0.800 for conclusions drawn from the data, 0.667 for
# tentative ones. A judge is trusted only when the LOWER end of its alpha interval reaches
# TRUSTED on at least MIN_ITEMS items: a high alpha on a handful of items proves nothing.
TRUSTED = 0.8
TENTATIVE = 0.667
MIN_ITEMS = 30


class JudgeVerdict(BaseModel):
    """Whether a judge may stand in for the human observed-action labels of a release."""

    trusted: bool
    verdict: str
    reason: str
    threshold: float
    min_items: int


def judge_verdict(
    alignment: JudgeAlignment, *, threshold: float = TRUSTED, min_items: int = MIN_ITEMS
) -> JudgeVerdict:
    """`trusted`, `tentative`, `not trusted` or `not enough items`, with the reason.

    trusted: n >= min_items and the interval's lower end of alpha >= threshold (the point
    estimate when the bootstrap was skipped); tentative: alpha >= TENTATIVE (or >= threshold
    with an interval reaching below it); otherwise not trusted.
    """

    def made(verdict: str, reason: str) -> JudgeVerdict:
        return JudgeVerdict(
            trusted=verdict == "trusted",
            verdict=verdict,
            reason=reason,
            threshold=threshold,
            min_items=min_items,
        )

    if alignment.n < min_items or alignment.alpha is None:
        return made(
            "not enough items",
            f"{alignment.n} items carry both a human and a judge observed action; "
            f"at least {min_items} are needed",
        )
    low = alignment.alpha_ci[0] if alignment.alpha_ci else alignment.alpha
    shown = f"alpha {alignment.alpha:.3f}" + (
        f" [{alignment.alpha_ci[0]:.3f}, {alignment.alpha_ci[1]:.3f}]" if alignment.alpha_ci else ""
    )
    if low >= threshold:
        return made("trusted", f"{shown}: the interval's lower end reaches {threshold:.3f}")
    if alignment.alpha >= min(threshold, TENTATIVE):
        return made(
            "tentative",
            f"{shown}: below {threshold:.3f} at the interval's lower end; use its labels with "
            "care and check a sample by hand",
        )
    return made("not trusted", f"{shown}: below {min(threshold, TENTATIVE):.3f}")
