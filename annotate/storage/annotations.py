"""Annotations: save one, import labels made elsewhere, list and read one's own with history."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any, NamedTuple

from pydantic import BaseModel
from sqlalchemy import bindparam, func, insert, or_, update
from sqlalchemy.orm import load_only, make_transient_to_detached
from sqlmodel import Session, col, select

from annotate.accounts.auth import require_role
from annotate.errors import (
    ImportProblem,
    NotFound,
    PermissionDenied,
)
from annotate.intake.labels import LabelRow
from annotate.settings import check_free_text, limits, text_too_long
from annotate.storage import visibility
from annotate.storage.models import (
    Annotation,
    AnnotationHistory,
    Campaign,
    Item,
    User,
    utcnow,
)
from annotate.storage.schemas import campaign_schema


class Unread:
    """Marks an argument the caller did not read: the function reads it itself."""


UNREAD = Unread()


class _Writes(NamedTuple):
    annotation: Any
    history: Any
    count_label: Any


@cache
def _statements() -> _Writes:
    """The statements of a save, built once (building one costs more than running it)."""
    item = Item.__table__  # type: ignore[attr-defined]
    return _Writes(
        annotation=insert(Annotation.__table__),  # type: ignore[attr-defined]
        history=insert(AnnotationHistory.__table__),  # type: ignore[attr-defined]
        count_label=update(item)
        .where(item.c.id == bindparam("b_item"))
        .values(human_labels=item.c.human_labels + 1),
    )


def save_annotation(
    *,
    session: Session,
    user: User,
    item: Item,
    labels: dict[str, Any],
    duration_s: float | None = None,
    flagged: bool = False,
    flag_note: str | None = None,
    overridden_rules: Sequence[str] = (),
    origin: str = "app",
    existing: Annotation | None | Unread = UNREAD,
) -> Annotation:
    """Create or replace `user`'s annotation of `item`, appending the new version to history.

    `labels` must already be normalized by the campaign's schema. Free text longer than
    ANNOTATE_MAX_TEXT_CHARS is refused (ValidationProblem) before anything is written.
    `existing` is `user`'s annotation of `item` (or None) when the caller read it already in
    this transaction.
    """
    check_free_text(
        {**labels, "flag_note": flag_note}, subject=f"Labels of item `{item.external_id}`"
    )
    if isinstance(existing, Unread):
        existing = session.exec(
            select(Annotation).where(Annotation.item_id == item.id, Annotation.user_id == user.id)
        ).first()
    now = utcnow()
    if existing is None:
        values: dict[str, Any] = {
            "campaign_id": item.campaign_id,
            "item_id": item.id,
            "user_id": user.id,
            "labels": labels,
            "flagged": flagged,
            "flag_note": flag_note,
            "overridden_rules": list(overridden_rules),
            "duration_s": duration_s,
            "origin": origin,
            "created_at": now,
            "updated_at": now,
        }
        # Prebuilt insert statements on the connection, not the unit of work: the same rows
        # (change_seq stamped by the trigger) for less CPU on every label. The object handed
        # back is attached as if loaded, so the session knows it like any other.
        if session.new:
            session.flush()  # rows the annotation refers to (a user or item just added)
        connection = session.connection()
        inserted: Any = connection.execute(_statements().annotation, values)
        (ann_id,) = inserted.inserted_primary_key
        ann = Annotation(id=ann_id, **values)
        make_transient_to_detached(ann)
        session.add(ann)
        action = "import" if origin == "import" else "create"
        if not user.is_machine and origin != "control":
            # Control answers take no slot (annotate.storage.controls).
            # The slot counter claims read; an UPDATE so concurrent writers cannot lose a count.
            # Not synchronised through the session, which would test every object in it on
            # every save (quadratic in an import of labels); `item`'s count is reloaded if read.
            connection.execute(_statements().count_label, {"b_item": item.id})
            if item in session:
                session.expire(item, ["human_labels"])
    else:
        ann = existing
        ann.labels = labels
        ann.flagged = flagged
        ann.flag_note = flag_note
        ann.overridden_rules = list(overridden_rules)
        if duration_s is not None:
            ann.duration_s = duration_s
        ann.updated_at = now
        action = "import" if origin == "import" else "edit"
        session.add(ann)
        session.flush()
    history: dict[str, Any] = {"annotation_id": ann.id, "item_id": ann.item_id}
    history.update(user_id=ann.user_id, labels=labels, action=action)
    history.update(duration_s=duration_s, changed_at=now)
    session.connection().execute(_statements().history, history)
    return ann


class LabelViolation(BaseModel):
    """A consistency rule that one annotator's labels of an item break."""

    item_id: str
    annotator: str
    rule: str
    message: str


class LabelImportResult(BaseModel):
    """What a label import did, and every rule the imported labels break."""

    annotations_added: int
    annotations_updated: int
    unchanged: int
    users_created: list[str]
    violations: list[LabelViolation] = []


def _show(value: str, limit: int = 60) -> str:
    """A value short enough to quote in an error message."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def import_labels(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    rows: Sequence[LabelRow],
    machine: bool = False,
    source: str = "",
    strict: bool = False,
) -> LabelImportResult:
    """Add labels made elsewhere: all or nothing, every bad row reported with its line.

    Unknown annotators are created without a password (`machine` marks them as automatic
    judges). A label already present with another value is a conflict, not an overwrite.
    Every consistency rule an annotator's labels of an item break (with what the database
    already holds for them) is listed in `violations`; with `strict` any violation refuses
    the import, naming them, and nothing is saved.
    """
    require_role(actor, "admin", "import labels", session=session)
    schema = campaign_schema(session=session, campaign=campaign)
    fields = {f.name: f for f in schema.fields}
    items: dict[str, int] = dict(
        session.exec(  # type: ignore[arg-type]
            select(Item.external_id, Item.id).where(Item.campaign_id == campaign.id)
        ).all()
    )
    problems: list[str] = []
    limit = limits().max_text_chars
    grouped: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    origin_line: dict[tuple[str, str, str], int] = {}
    for row in rows:
        where = f"{source}:{row.line}"
        if row.item_id not in items:
            problems.append(
                f"{where}: field `item_id`: no item `{row.item_id}` in campaign `{campaign.name}`"
            )
            continue
        spec = fields.get(row.field)
        if spec is None:
            problems.append(
                f"{where}: field `field`: `{row.field}` is not a field of schema {schema.id} "
                f"({', '.join(fields)})"
            )
            continue
        value: Any
        if spec.kind == "multi":
            value = [p.strip() for p in row.value.split(";") if p.strip()]
            bad = [v for v in value if v not in spec.values]
            if bad:
                problems.append(
                    f"{where}: field `value`: `{_show(bad[0])}` is not an allowed "
                    f"{row.field} value ({', '.join(spec.values)})"
                )
                continue
            value = sorted(set(value), key=spec.values.index)
        elif not row.value:
            continue
        elif spec.kind == "single" and row.value not in spec.values:
            problems.append(
                f"{where}: field `value`: `{_show(row.value)}` is not an allowed {row.field} value "
                f"({', '.join(spec.values)}); map it with --values"
            )
            continue
        else:
            value = row.value
            long_text = text_too_long(row.field, value, limit)
            if long_text is not None:
                problems.append(f"{where}: field `value`: {long_text}")
                continue
        key = (row.item_id, row.annotator)
        prior = grouped[key].get(row.field)
        if prior is not None and prior != value:
            first = origin_line[(row.item_id, row.annotator, row.field)]
            problems.append(
                f"{where}: field `value`: {row.annotator} already gave {row.field} = {prior} "
                f"for item `{row.item_id}` on line {first}"
            )
            continue
        grouped[key][row.field] = value
        origin_line.setdefault((row.item_id, row.annotator, row.field), row.line)

    names = sorted({a for _, a in grouped})
    users = (
        {u.name: u for u in session.exec(select(User).where(col(User.name).in_(names))).all()}
        if names
        else {}
    )
    for name, user in users.items():
        if user.is_machine != machine:
            kind = "an automatic judge" if user.is_machine else "a human annotator"
            flag = "with" if user.is_machine else "without"
            problems.append(
                f"{source}: annotator `{name}` already exists as {kind}; import {flag} --machine"
            )
    existing: dict[tuple[int, int], Annotation] = {}
    if users:
        for stored in session.exec(
            select(Annotation).where(
                Annotation.campaign_id == campaign.id,
                col(Annotation.user_id).in_([u.id for u in users.values()]),
            )
        ).all():
            existing[(stored.item_id, stored.user_id)] = stored
    plan: list[tuple[tuple[str, str], dict[str, Any], Annotation | None]] = []
    for key, labels in grouped.items():
        known = users.get(key[1])
        prior_ann = existing.get((items[key[0]], known.id)) if known is not None else None  # type: ignore[arg-type]
        if prior_ann is not None:
            for fname, value in labels.items():
                old = prior_ann.labels.get(fname)
                if old not in (None, value):
                    problems.append(
                        f"{source}:{origin_line[(key[0], key[1], fname)]}: field `value`: "
                        f"{key[1]} already has {fname} = {old} for item `{key[0]}` in the "
                        f"database (this file says {value})"
                    )
        plan.append((key, labels, prior_ann))
    if problems:
        raise ImportProblem(problems)
    violations = [
        LabelViolation(item_id=ext, annotator=name, rule=w.rule, message=w.message)
        for (ext, name), labels, prior_ann in plan
        for w in schema.check_consistency(
            {**(prior_ann.labels if prior_ann is not None else {}), **labels}
        )
    ]
    if strict and violations:
        raise ImportProblem(
            [
                f"{source}: item `{v.item_id}`, annotator {v.annotator}: breaks rule "
                f"{v.rule}: {v.message}"
                for v in violations
            ]
            + [f"{source}: refused (--strict): {len(violations)} rule violation(s)"]
        )

    created: list[str] = []
    for name in names:
        if name not in users:
            if len(name) > 200 or "\x00" in name:
                raise ImportProblem([f"{source}: annotator name `{name[:40]}...` is too long"])
            new_user = User(name=name, role="annotator", is_machine=machine)
            session.add(new_user)
            users[name] = new_user
            created.append(name)
    session.flush()
    fresh = [(ext, items[ext], users[name], labels) for (ext, name), labels, c in plan if c is None]
    _add_imported(session, campaign, fresh)
    item_rows = _items_by_id(session, sorted({items[e] for (e, _), _, c in plan if c is not None}))
    updated = unchanged = 0
    for (ext, name), labels, current in plan:
        if current is None:
            continue
        merged = {**current.labels, **labels}
        if merged == current.labels:
            unchanged += 1
            continue
        updated += 1
        save_annotation(
            session=session,
            user=users[name],
            item=item_rows[items[ext]],
            labels=merged,
            origin="import",
        )
    session.flush()
    added = len(fresh)
    return LabelImportResult(
        annotations_added=added,
        annotations_updated=updated,
        unchanged=unchanged,
        users_created=created,
        violations=violations,
    )


def _add_imported(
    session: Session, campaign: Campaign, fresh: Sequence[tuple[str, int, User, dict[str, Any]]]
) -> None:
    """New imported annotations, their history and slot counts, written in batches.

    What `save_annotation` writes for each of them, without an ORM object per row: one at a
    time, 300,000 imported labels took over an hour.
    """
    now = utcnow()
    for ext, _, _, labels in fresh:
        check_free_text(labels, subject=f"Labels of item `{ext}`")
    base = {"campaign_id": campaign.id, "flagged": False, "flag_note": None, "duration_s": None}
    rows: list[dict[str, Any]] = [
        {
            **base,
            "item_id": item_id,
            "user_id": user.id,
            "labels": labels,
            "overridden_rules": [],
            "origin": "import",
            "created_at": now,
            "updated_at": now,
        }
        for _, item_id, user, labels in fresh
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(Annotation), rows[start : start + 5000])
    del rows
    wanted = {(item_id, user.id): labels for _, item_id, user, labels in fresh}
    history = [
        {
            "annotation_id": ann_id,
            "item_id": item_id,
            "user_id": user_id,
            "labels": wanted[(item_id, user_id)],
            "action": "import",
            "duration_s": None,
            "changed_at": now,
        }
        for ann_id, item_id, user_id in session.execute(
            select(Annotation.id, Annotation.item_id, Annotation.user_id).where(
                Annotation.campaign_id == campaign.id,
                col(Annotation.user_id).in_({u.id for _, _, u, _ in fresh}),
            )
        )
        if (item_id, user_id) in wanted
    ]
    for start in range(0, len(history), 5000):
        session.execute(insert(AnnotationHistory), history[start : start + 5000])
    slots = Counter(item_id for _, item_id, user, _ in fresh if not user.is_machine)
    item = Item.__table__  # type: ignore[attr-defined]
    bump = (
        item.update()
        .where(item.c.id == bindparam("iid"))
        .values(human_labels=item.c.human_labels + bindparam("n"))
    )
    pairs = [{"iid": i, "n": n} for i, n in slots.items()]
    for start in range(0, len(pairs), 5000):
        session.connection().execute(bump, pairs[start : start + 5000])


def _items_by_id(session: Session, ids: Sequence[int]) -> dict[int, Item]:
    """The items `ids`, with only what saving a label needs (not their text), by id."""
    found: dict[int, Item] = {}
    for start in range(0, len(ids), 5000):
        for it in session.exec(
            select(Item)
            .options(load_only(Item.id, Item.campaign_id, Item.external_id))  # type: ignore[arg-type]
            .where(col(Item.id).in_(ids[start : start + 5000]))
        ).all():
            found[it.id] = it  # type: ignore[index]
    return found


def list_own_annotations(
    *,
    session: Session,
    user: User,
    campaign: Campaign,
    offset: int = 0,
    limit: int = 20,
    search: str = "",
) -> tuple[list[tuple[Annotation, Item]], int]:
    """`user`'s own annotations in `campaign`, newest change first, and how many there are.

    Only ever the caller's own labels: labeling is blind. `search` matches prompts
    (case-insensitive substring) and the item's name as the caller sees it: its handle
    (exactly), or for leads and admins its id (substring). Hidden ids are never searched, so
    the search tells annotators nothing about them.
    """
    require_role(user, "annotator", "see their own labels", session=session)
    where: list[Any] = [Annotation.campaign_id == campaign.id, Annotation.user_id == user.id]
    wanted = search.strip()
    if wanted:
        pattern = f"%{wanted.lower()}%"
        matches = [func.lower(func.coalesce(Item.prompt, "")).like(pattern)]
        if visibility.sees_everything(user):
            matches.append(func.lower(Item.external_id).like(pattern))
        if visibility.HANDLE.fullmatch(wanted.lower()):
            own = session.exec(
                select(Annotation.item_id).where(*where)  # type: ignore[call-overload]
            ).all()
            named = [
                i
                for i in own
                if visibility.item_handle(campaign=campaign, item_id=i) == wanted.lower()
            ]
            matches.append(col(Item.id).in_(named))
        where.append(or_(*matches))
    total = session.exec(
        select(func.count())
        .select_from(Annotation)
        .join(Item, col(Item.id) == Annotation.item_id)
        .where(*where)
    ).one()
    rows = session.exec(
        select(Annotation, Item)
        .join(Item, col(Item.id) == Annotation.item_id)
        .where(*where)
        .order_by(col(Annotation.updated_at).desc(), col(Annotation.id).desc())
        .offset(max(0, offset))
        .limit(max(1, min(limit, 200)))
    ).all()
    return [(a, i) for a, i in rows], int(total)


def get_own_annotation(
    *, session: Session, user: User, annotation_id: int
) -> tuple[Annotation, Item]:
    """One of `user`'s own annotations with its item; PermissionDenied for anyone else's."""
    require_role(user, "annotator", "see their own labels", session=session)
    annotation = session.get(Annotation, annotation_id)
    if annotation is None:
        raise NotFound(f"No annotation {annotation_id}")
    if annotation.user_id != user.id:
        raise PermissionDenied(f"Annotation {annotation_id} is another annotator's")
    item = session.get(Item, annotation.item_id)
    assert item is not None
    return annotation, item


def own_history(*, session: Session, user: User, annotation_id: int) -> list[AnnotationHistory]:
    """Every saved version of one of `user`'s own annotations, oldest first."""
    get_own_annotation(session=session, user=user, annotation_id=annotation_id)
    return list(
        session.exec(
            select(AnnotationHistory)
            .where(AnnotationHistory.annotation_id == annotation_id)
            .order_by(col(AnnotationHistory.changed_at), col(AnnotationHistory.id))
        ).all()
    )
