"""Tolerance bands: which actions earn credit on an item, from the schema and the annotators.

Pure module: plain data in, plain data out; no database, no Streamlit.

A band is ``{action: credit}`` for every action that earns credit > 0 on an item; the right
action is always in it at 1 and every credit lies in (0, 1]. The band suggested to a lead at
adjudication (``suggest_band``) is built in two steps:

1. the schema's credits around the chosen right action (``LabelSchema.default_band``);
2. widened by how the item's human annotators split on the right action: an action that at
   least ``min_share`` of them chose (default one third) is evidence that it is acceptable
   too, so it earns at least ``split_credit`` (default 0.5), never less than the schema gives.

Splits only widen the band: annotators who all chose one action say nothing about whether
its neighbours are acceptable, so the schema's credits stand. The lead then widens or narrows
the suggestion by hand; ``check_band`` validates whatever is finally stored.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from annotate.errors import ValidationProblem
from annotate.schema import LabelSchema

# Share of annotators whose choice counts as evidence, and the credit it earns at least.
# One third: with two annotators a 1-1 split qualifies, with three a single dissenter does.
MIN_SHARE = 1 / 3
SPLIT_CREDIT = 0.5


def vote_shares(votes: Iterable[str | None] | Mapping[str, float]) -> dict[str, float]:
    """Share of annotators choosing each value: from a list of choices or from counts.

    Missing choices (None) are ignored; an empty input gives an empty dict.
    """
    counts: Mapping[str, float]
    if isinstance(votes, Mapping):
        counts = votes
    else:
        counts = Counter(v for v in votes if v is not None)
    total = float(sum(counts.values()))
    if total <= 0:
        return {}
    return {value: n / total for value, n in counts.items() if n > 0}


def band_from_credits(
    actions: Sequence[str],
    credit: Sequence[Sequence[float]],
    right: str,
    votes: Iterable[str | None] | Mapping[str, float] = (),
    *,
    min_share: float = MIN_SHARE,
    split_credit: float = SPLIT_CREDIT,
) -> dict[str, float]:
    """The suggested band around ``right`` from a credit matrix over ``actions`` and a split.

    ``credit[i][j]`` is the credit for taking ``actions[j]`` when ``actions[i]`` is right (values
    outside [0, 1] are clipped). ``votes`` is the annotators' right-action choices (or counts
    per action). Every action chosen by at least ``min_share`` of the annotators earns at least
    ``split_credit``. Returns actions in ``actions`` order, right action at 1, credits in (0, 1].
    Raises ValidationProblem for an unknown action or a bad ``split_credit``.
    """
    if right not in actions:
        raise ValidationProblem(f"`{right}` is not one of the actions {', '.join(actions)}")
    if not 0 < split_credit <= 1:
        raise ValidationProblem(f"split_credit must be in (0, 1], got {split_credit}")
    shares = vote_shares(votes)
    unknown = sorted(set(shares) - set(actions))
    if unknown:
        raise ValidationProblem(f"`{unknown[0]}` is not one of the actions {', '.join(actions)}")
    row = actions.index(right)
    band: dict[str, float] = {}
    for column, action in enumerate(actions):
        value = float(credit[row][column])
        value = min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0
        if shares.get(action, 0.0) >= min_share:
            value = max(value, split_credit)
        if action == right:
            value = 1.0
        # Rounded before the test: a credit that rounds to 0 earns nothing, so is not in the band.
        value = round(value, 4)
        if value > 0:
            band[action] = value
    return band


def suggest_band(
    schema: LabelSchema,
    right: str,
    votes: Iterable[str | None] | Mapping[str, float] = (),
    *,
    min_share: float = MIN_SHARE,
    split_credit: float = SPLIT_CREDIT,
) -> dict[str, float]:
    """The band a lead starts from: ``schema``'s credits around ``right``, widened by the split.

    See the module docstring for the rule; ``band_from_credits`` has the arguments.
    """
    return band_from_credits(
        schema.action_labels,
        schema.credit_matrix().tolist(),
        right,
        votes,
        min_share=min_share,
        split_credit=split_credit,
    )


def check_band(schema: LabelSchema, right: str, band: Mapping[str, float]) -> dict[str, float]:
    """A lead's band in canonical form: schema action order, zero credits dropped.

    Raises ValidationProblem naming the action when an action is unknown, a credit is outside
    [0, 1], or the right action is not in the band at 1.
    """
    actions = schema.action_labels
    if right not in actions:
        raise ValidationProblem(f"`{right}` is not an action of schema {schema.id}")
    for action, value in band.items():
        if action not in actions:
            raise ValidationProblem(
                f"Band action `{action}` is not one of {', '.join(actions)} (schema {schema.id})"
            )
        if not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
            raise ValidationProblem(f"Band credit for `{action}` must be in [0, 1], got {value}")
    if band.get(right) != 1:
        raise ValidationProblem(
            f"The band must give the right action `{right}` credit 1, got {band.get(right)}"
        )
    return {a: float(band[a]) for a in actions if band.get(a, 0) > 0}


def majority(votes: Iterable[str | None]) -> str | None:
    """The value more than half of the (non-missing) votes chose; None when there is none.

    A strict majority, not a plurality: with a 1-1 or 2-2-1 split there is no majority, so a
    lead picking any value does not override one.
    """
    counts = Counter(v for v in votes if v is not None)
    total = sum(counts.values())
    if not total:
        return None
    value, top = counts.most_common(1)[0]
    return value if top * 2 > total else None
