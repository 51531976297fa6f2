"""Control items (leads): mark adjudicated items as controls, and each annotator's credit on them.

A control is an item a lead adjudicated and then set aside. Claims mix controls into every
annotator's stream at the campaign's `control_rate` (and serve only controls during a
qualification, see `annotate.labeling.qualify`); the page shows them like any other item.
Their labels never enter agreement, the review queue, k or a gold release
(`annotate.storage.controls`).

`control_report` gives, per annotator: the number of control answers, the mean band credit
(the lead's band for the item; the schema's credit when the band is empty) with a 95% Wilson
interval, the trend (mean over the last 50 answers minus the mean before), and a drift flag:
control credit, or leave-one-out alpha on the right action (alpha with the annotator minus
alpha without, over the items they labeled), lower over their last 50 items than before by
more than the campaign's `drift_margin`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import Session, col, func, select

from annotate import stats as ag
from annotate.accounts.auth import require_role
from annotate.errors import NotFound, ValidationProblem
from annotate.labeling.qualify import _qualification, control_answers
from annotate.review.blas import one_blas_thread
from annotate.review.figures import _metric
from annotate.storage.models import (
    Adjudication,
    Annotation,
    Campaign,
    Control,
    Item,
    QualificationReset,
    User,
    utcnow,
)
from annotate.storage.queries import load_labels
from annotate.table import LabelTable

RECENT = 50  # the window drift and trend look at: an annotator's last 50 items


@dataclass(frozen=True)
class ControlRow:
    """One control item as `list_controls` shows it."""

    external_id: str
    item_id: int
    marked_by: str
    marked_at: datetime
    answers: int


@dataclass(frozen=True)
class ControlCredit:
    """One annotator's record on controls (credit in [0, 1]; None without answers)."""

    annotator: str
    answers: int
    credit: float | None
    ci: tuple[float, float] | None
    trend: float | None
    recent_credit: float | None
    earlier_credit: float | None
    alpha_delta_recent: float | None
    alpha_delta_earlier: float | None
    drift: bool
    drift_reasons: list[str]
    qualification: str

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON: the interval as a list."""
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci is not None else None
        return out


def _items(session: Session, campaign: Campaign, external_ids: Sequence[str]) -> list[Item]:
    if not external_ids:
        raise ValidationProblem("Name at least one item (its external id)")
    found = {
        it.external_id: it
        for it in session.exec(
            select(Item).where(
                Item.campaign_id == campaign.id, col(Item.external_id).in_(list(external_ids))
            )
        ).all()
    }
    missing = [e for e in external_ids if e not in found]
    if missing:
        raise NotFound(
            f"Campaign `{campaign.name}` has no item " + ", ".join(f"`{e}`" for e in missing)
        )
    return [found[e] for e in external_ids]


def mark_controls(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    external_ids: Sequence[str],
    now: datetime | None = None,
) -> list[str]:
    """Lead: make adjudicated items controls; returns the ids newly marked (all or nothing).

    Refuses (ValidationProblem, nothing changed) any item without a current adjudication:
    a control's answers are scored against the lead's labels.
    """
    lead = require_role(actor, "lead", "mark control items", session=session)
    items = _items(session, campaign, external_ids)
    ids = [it.id for it in items]
    adjudicated = {
        int(i)
        for i in session.exec(
            select(Adjudication.item_id).where(
                col(Adjudication.item_id).in_(ids), col(Adjudication.is_current).is_(True)
            )
        ).all()
    }
    pending = [it.external_id for it in items if it.id not in adjudicated]
    if pending:
        raise ValidationProblem(
            "Only adjudicated items can be controls; adjudicate first: "
            + ", ".join(f"`{e}`" for e in pending)
        )
    already = {
        int(c.item_id) for c in session.exec(select(Control).where(col(Control.item_id).in_(ids)))
    }
    stamp = now or utcnow()
    added = []
    for it in items:
        if it.id in already or it.id is None:
            continue
        session.add(
            Control(item_id=it.id, campaign_id=campaign.id or 0, marked_by=lead.id, marked_at=stamp)
        )
        already.add(it.id)
        added.append(it.external_id)
    session.flush()
    return added


def unmark_controls(
    *, session: Session, actor: User, campaign: Campaign, external_ids: Sequence[str]
) -> list[str]:
    """Lead: items stop being controls (their control answers stay out of agreement)."""
    require_role(actor, "lead", "unmark control items", session=session)
    items = _items(session, campaign, external_ids)
    removed = []
    for it in items:
        row = session.get(Control, it.id)
        if row is not None:
            session.delete(row)
            removed.append(it.external_id)
    session.flush()
    return removed


def list_controls(*, session: Session, actor: User, campaign: Campaign) -> list[ControlRow]:
    """Lead: the campaign's controls, with who marked them and how many answers each has."""
    require_role(actor, "lead", "list control items", session=session)
    rows = session.exec(
        select(Control, Item.external_id, User.name)
        .join(Item, col(Item.id) == Control.item_id)
        .join(User, col(User.id) == Control.marked_by, isouter=True)
        .where(Control.campaign_id == campaign.id)
        .order_by(col(Item.external_id))
    ).all()
    counts: dict[int, int] = {}
    # Only the marked items' answers: found by item, not by scanning the campaign's labels.
    marked = [int(c.item_id) for c, _, _ in rows]
    for start in range(0, len(marked), 500):
        for item_id in session.exec(
            select(Annotation.item_id).where(
                col(Annotation.item_id).in_(marked[start : start + 500]),
                Annotation.origin == "control",
            )
        ).all():
            counts[int(item_id)] = counts.get(int(item_id), 0) + 1
    return [
        ControlRow(
            external_id=ext,
            item_id=int(c.item_id),
            marked_by=name or "command line",
            marked_at=c.marked_at,
            answers=counts.get(int(c.item_id), 0),
        )
        for c, ext, name in rows
    ]


def controls_version(*, session: Session, actor: User, campaign: Campaign) -> tuple[Any, ...]:
    """Lead: a cheap fingerprint of what `control_report` reads besides the labels (the
    marked controls, qualification resets and the campaign's control settings); with
    `labels_version` it says when a kept report is out of date."""
    require_role(actor, "lead", "see control credit", session=session)
    marked = session.exec(
        select(func.count(), func.max(Control.item_id), func.max(Control.marked_at)).where(
            Control.campaign_id == campaign.id
        )
    ).one()
    resets = session.exec(
        select(func.count(), func.max(QualificationReset.reset_at)).where(
            QualificationReset.campaign_id == campaign.id
        )
    ).one()
    settings = (
        campaign.control_rate,
        campaign.drift_margin,
        campaign.qualification_items,
        campaign.qualification_threshold,
    )
    return (*settings, *(str(v) for v in (*marked, *resets)))


def is_control_item(*, session: Session, actor: User, item_id: int) -> bool:
    """Lead: whether `item_id` is a control (the adjudicate page's toggle)."""
    require_role(actor, "lead", "see control items", session=session)
    return session.get(Control, item_id) is not None


def wilson(mean: float, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval for a mean credit in [0, 1] over `n` answers."""
    if n <= 0:
        return None
    p = min(max(mean, 0.0), 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


class _RightAction:
    """The right action of every human label, encoded once, for leave-one-out alphas.

    A matrix over a subset of units holds, per unit, the value counts of its labels; alpha
    reads nothing else. So the counts of every item are summed once, and a subset's alpha
    with and without one annotator is the alpha of those rows, minus that annotator's own
    labels for the second: the very counts `alpha` builds from the annotators x units
    matrix, without building it (six matrices of 100,000 items per dashboard, before).
    """

    def __init__(self, table: LabelTable) -> None:
        field = table.schema.right_action_field
        self.humans = table.humans()
        self.level = _metric(table.schema, field)
        self.n_values = len(table.schema.field(field).values)
        labels = self.humans[field].to_numpy(dtype=object)
        # As `table.matrix`: annotators with at least one right action are its rows.
        self.annotators = set(self.humans["annotator"][pd.notna(labels)].tolist())
        codes, _ = ag.encode_labels(labels[None, :], table.schema.field(field).values)
        self.codes = codes[0]
        self.units, self.items = pd.factorize(self.humans["item_id"].to_numpy())
        given = self.codes >= 0
        flat = np.bincount(
            self.units[given] * self.n_values + self.codes[given],
            minlength=len(self.items) * self.n_values,
        )
        self.counts = flat.reshape(len(self.items), self.n_values)

    def delta(self, annotator: str, units: np.ndarray, rows: np.ndarray) -> float | None:
        """Alpha over `units` (item ids) minus alpha without `annotator`, whose labels of
        them are at positions `rows` of `humans`."""
        if not len(units) or annotator not in self.annotators:
            return None
        where = pd.Index(self.items).get_indexer(units)
        whole = self.counts[where]
        own = self.codes[rows]
        rest = whole.copy()
        labelled = np.flatnonzero(own >= 0)
        rest[labelled, own[labelled]] -= 1
        alone = len(self.annotators) == 1
        value = ag.alpha_from_counts(whole, self.level)
        without = math.nan if alone else ag.alpha_from_counts(rest, self.level)
        delta = value - without
        return None if math.isnan(delta) else float(delta)

    def split(self, annotator: str) -> tuple[float | None, float | None]:
        """Leave-one-out alpha over the annotator's last RECENT items, and over those before."""
        mask = (self.humans["annotator"] == annotator).to_numpy()
        mine = self.humans.loc[mask, ["created_at", "item_id"]]
        mine = mine.set_axis(np.flatnonzero(mask)).sort_values(["created_at", "item_id"])
        ids, rows = mine["item_id"].to_numpy(), mine.index.to_numpy()
        recent = self.delta(annotator, ids[-RECENT:], rows[-RECENT:])
        if len(ids) <= RECENT:
            return recent, None
        return recent, self.delta(annotator, ids[:-RECENT], rows[:-RECENT])


@one_blas_thread
def leave_one_out_drift(
    table: LabelTable, *, actor: User
) -> dict[str, tuple[float | None, float | None]]:
    """Per human annotator: leave-one-out alpha over their last RECENT items, and over those
    before (None where undefined). The part of `control_report` that reads only the labels,
    so a page can keep it with the labels' version; leads only."""
    require_role(actor, "lead", "see control credit")
    coded = _RightAction(table)
    return {str(name): coded.split(str(name)) for name in coded.humans["annotator"].unique()}


def control_report(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    table: LabelTable | None = None,
    drift: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> list[ControlCredit]:
    """Lead: every human annotator's control credit, interval, trend and drift flag.

    `table` (the campaign's `load_labels`, as the dashboard holds it) saves reading it again;
    `drift` (`leave_one_out_drift(table)`, as the dashboard keeps it) saves computing it.
    """
    require_role(actor, "lead", "see control credit", session=session)
    if table is None and drift is None:
        table = load_labels(session=session, actor=actor, campaign=campaign)
    users = session.exec(
        select(User)
        .where(
            col(User.id).in_(
                select(Annotation.user_id).where(Annotation.campaign_id == campaign.id).distinct()
            ),
            col(User.is_machine).is_(False),
        )
        .order_by(col(User.name))
    ).all()
    margin = float(campaign.drift_margin)
    coded = _RightAction(table) if drift is None and table is not None else None
    out = []
    for user in users:
        assert user.id is not None
        credits = [a.credit for a in control_answers(session, campaign, user.id)]
        mean = _mean(credits)
        recent, earlier = _mean(credits[-RECENT:]), _mean(credits[:-RECENT])
        trend = recent - earlier if recent is not None and earlier is not None else None
        if drift is not None:
            loo_recent, loo_earlier = drift.get(user.name, (None, None))
        else:
            assert coded is not None
            loo_recent, loo_earlier = coded.split(user.name)
        reasons = []
        if trend is not None and trend < -margin:
            reasons.append(f"control credit fell {-trend:.2f} over the last {RECENT} answers")
        if loo_recent is not None and loo_earlier is not None and loo_earlier - loo_recent > margin:
            reasons.append(
                f"leave-one-out alpha fell {loo_earlier - loo_recent:.2f} "
                f"over the last {RECENT} items"
            )
        state = _qualification(session, campaign, user.id)[0]
        qualification = (
            "none"
            if not state.active
            else "passed"
            if state.passed
            else "failed"
            if state.failed
            else f"{state.done}/{state.required}"
        )
        out.append(
            ControlCredit(
                annotator=user.name,
                answers=len(credits),
                credit=mean,
                ci=wilson(mean, len(credits)) if mean is not None else None,
                trend=trend,
                recent_credit=recent,
                earlier_credit=earlier,
                alpha_delta_recent=loo_recent,
                alpha_delta_earlier=loo_earlier,
                drift=bool(reasons),
                drift_reasons=reasons,
                qualification=qualification,
            )
        )
    return out


def set_control_settings(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    control_rate: float | None = None,
    qualification_items: int | None = None,
    qualification_threshold: float | None = None,
    drift_margin: float | None = None,
) -> Campaign:
    """Lead: a campaign's control rate, qualification (N items, threshold) and drift margin.

    Every value is checked before anything changes (ValidationProblem naming the field).
    """
    require_role(actor, "lead", "change control settings", session=session)
    checks = [
        ("control rate", control_rate, 0.0, 1.0),
        ("qualification items", qualification_items, 0, 1000),
        ("qualification threshold", qualification_threshold, 0.0, 1.0),
        ("drift margin", drift_margin, 0.0, 1.0),
    ]
    for name, value, low, high in checks:
        if (
            value is not None
            and not (low <= value <= high)
            or (isinstance(value, float) and math.isnan(value))
        ):
            raise ValidationProblem(
                f"Campaign `{campaign.name}`: {name} must be between {low} and {high}, got {value}"
            )
    if control_rate is not None:
        campaign.control_rate = float(control_rate)
    if qualification_items is not None:
        campaign.qualification_items = int(qualification_items)
    if qualification_threshold is not None:
        campaign.qualification_threshold = float(qualification_threshold)
    if drift_margin is not None:
        campaign.drift_margin = float(drift_margin)
    session.add(campaign)
    session.flush()
    return campaign
