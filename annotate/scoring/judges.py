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
