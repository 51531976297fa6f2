"""Storage functions for campaigns, schemas, users, items, labels and status.

Keyword-only, with an explicit session; the caller owns the transaction (see db.session_scope),
so a function that raises leaves nothing behind once the caller rolls back.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, insert, or_
from sqlmodel import Session, col, select

from annotate.auth import check_role, hash_password, require_role
from annotate.errors import (
    Conflict,
    ImportProblem,
    NotFound,
    PermissionDenied,
    ValidationProblem,
)
from annotate.importers import ItemRecord, LabelRow
from annotate.models import (
    Annotation,
    AnnotationHistory,
    Campaign,
    CampaignMember,
    Item,
    LabelSchemaRecord,
    Release,
    User,
    utcnow,
)
from annotate.schema import LabelSchema, schema_from_json

# -- schemas -----------------------------------------------------------------------------------


def register_schema(*, session: Session, schema: LabelSchema) -> LabelSchemaRecord:
    """Store `schema` or return its stored copy; changed content under a used version is refused."""
    existing = session.exec(
        select(LabelSchemaRecord).where(
            LabelSchemaRecord.name == schema.name, LabelSchemaRecord.version == schema.version
        )
    ).first()
    digest = schema.fingerprint()
    if existing is not None:
        if existing.sha256 != digest:
            raise Conflict(
                f"Schema {schema.id} is already registered with different content; schemas are "
                f"immutable once used, so give the changed file a new `version`"
            )
        return existing
    record = LabelSchemaRecord(
        name=schema.name, version=schema.version, sha256=digest, content=schema.canonical_json()
    )
    session.add(record)
    session.flush()
    return record


@lru_cache(maxsize=64)
def _schema_from_content(content: str) -> LabelSchema:
    return schema_from_json(content)


def campaign_schema(*, session: Session, campaign: Campaign) -> LabelSchema:
    """The label schema version `campaign` was created with."""
    record = session.get(LabelSchemaRecord, campaign.schema_id)
    if record is None:
        raise NotFound(f"Campaign `{campaign.name}` refers to a missing schema")
    return _schema_from_content(record.content)


# -- users -------------------------------------------------------------------------------------


def add_user(
    *,
    session: Session,
    actor: User,
    name: str,
    role: str = "annotator",
    password: str | None = None,
    is_machine: bool = False,
) -> User:
    """Create a user; only admins may. Passwords are stored as argon2 hashes only."""
    require_role(actor, "admin", "add users")
    name = name.strip()
    if not name or len(name) > 200 or any(c in name for c in "\x00\r\n\t"):
        raise ValidationProblem(f"User name `{name}` must be 1-200 printable characters")
    check_role(role)
    if session.exec(select(User).where(User.name == name)).first() is not None:
        raise Conflict(f"User `{name}` already exists")
    user = User(
        name=name,
        role=role,
        password_hash=hash_password(password) if password is not None else None,
        is_machine=is_machine,
    )
    session.add(user)
    session.flush()
    return user


def set_password(*, session: Session, actor: User, name: str, password: str) -> User:
    """Set `name`'s password: admins for anyone, an active user for herself."""
    user = get_user(session=session, name=name)
    if actor.id != user.id:
        require_role(actor, "admin", "change another user's password")
    else:
        # A deactivated account or an imported judge cannot sign in; no password for them.
        require_role(actor, "annotator", "change their password")
    user.password_hash = hash_password(password)
    session.add(user)
    return user


def get_user(*, session: Session, name: str) -> User:
    """The user called `name`; NotFound otherwise."""
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise NotFound(f"No user `{name}`")
    return user


def list_users(*, session: Session, actor: User) -> list[User]:
    """Every user, by name; admins only."""
    require_role(actor, "admin", "list users")
    return list(session.exec(select(User).order_by(col(User.name))).all())


# -- campaigns ---------------------------------------------------------------------------------


def create_campaign(
    *,
    session: Session,
    actor: User,
    name: str,
    schema: LabelSchema,
    overlap: int = 2,
    guidelines: str = "",
    restricted: bool = False,
    members: Sequence[str] = (),
    seed: int | None = None,
) -> Campaign:
    """Create a campaign on `schema` with `overlap` annotators per item; admins only."""
    require_role(actor, "admin", "create campaigns")
    name = name.strip()
    if not name or len(name) > 200 or "/" in name or name.startswith("."):
        raise ValidationProblem(
            f"Campaign name `{name}` must be 1-200 characters, without `/` or a leading dot"
        )
    if overlap < 1:
        raise ValidationProblem(f"Overlap must be at least 1, got {overlap}")
    if session.exec(select(Campaign).where(Campaign.name == name)).first() is not None:
        raise Conflict(f"Campaign `{name}` already exists")
    record = register_schema(session=session, schema=schema)
    campaign = Campaign(
        name=name,
        schema_id=record.id,  # type: ignore[arg-type]
        overlap=overlap,
        guidelines=guidelines,
        restricted=restricted or bool(members),
        seed=secrets.randbelow(2**31) if seed is None else seed,
    )
    session.add(campaign)
    session.flush()
    for member in members:
        user = get_user(session=session, name=member)
        session.add(CampaignMember(campaign_id=campaign.id, user_id=user.id))  # type: ignore[arg-type]
    session.flush()
    return campaign


def get_campaign(*, session: Session, name: str) -> Campaign:
    """The campaign called `name`; NotFound otherwise."""
    campaign = session.exec(select(Campaign).where(Campaign.name == name)).first()
    if campaign is None:
        raise NotFound(f"No campaign `{name}`")
    return campaign


def can_label(*, session: Session, user: User, campaign: Campaign) -> bool:
    """Whether `user` may label in `campaign` (open campaigns admit every annotator)."""
    if not user.active or user.is_machine:
        return False
    if not campaign.restricted:
        return True
    member = session.get(CampaignMember, (campaign.id, user.id))
    return member is not None


def list_campaigns(*, session: Session, actor: User) -> list[Campaign]:
    """The campaigns `actor` can see: all for leads and admins, their own for annotators."""
    require_role(actor, "annotator", "list campaigns")
    campaigns = list(session.exec(select(Campaign).order_by(col(Campaign.name))).all())
    if actor.role in ("lead", "admin"):
        return campaigns
    return [c for c in campaigns if can_label(session=session, user=actor, campaign=c)]


def set_members(
    *, session: Session, actor: User, campaign: Campaign, members: Iterable[str]
) -> None:
    """Restrict `campaign` to exactly `members` (an empty list opens it to everyone)."""
    require_role(actor, "admin", "change campaign membership")
    users = [get_user(session=session, name=m) for m in members]
    for old in session.exec(
        select(CampaignMember).where(CampaignMember.campaign_id == campaign.id)
    ).all():
        session.delete(old)
    session.flush()
    for u in users:
        session.add(CampaignMember(campaign_id=campaign.id, user_id=u.id))  # type: ignore[arg-type]
    campaign.restricted = bool(users)
    session.add(campaign)
    session.flush()


# -- items -------------------------------------------------------------------------------------


class ImportResult(BaseModel):
    """What an import did."""

    added: int
    unchanged: int


def import_items(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    records: Sequence[ItemRecord],
    source: str = "",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Add `records` to `campaign`: all or nothing; items already there (same id and content)
    are left alone; an id already there with other content is an ImportProblem."""
    require_role(actor, "admin", "import items")
    existing: dict[str, str] = dict(
        session.exec(  # type: ignore[arg-type]
            select(Item.external_id, Item.content_hash).where(Item.campaign_id == campaign.id)
        ).all()
    )
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    unchanged = 0
    now = utcnow()
    for rec in records:
        digest = rec.content_hash()
        prior = existing.get(rec.external_id)
        if prior is not None:
            if prior == digest:
                unchanged += 1
            else:
                problems.append(
                    f"{source}:{rec.line}: field `id`: item `{rec.external_id}` is already in "
                    f"campaign `{campaign.name}` with different content"
                )
            continue
        rows.append(
            {
                "campaign_id": campaign.id,
                "external_id": rec.external_id,
                "prompt": rec.prompt,
                "conversation": [t.model_dump() for t in rec.conversation]
                if rec.conversation
                else None,
                "response": rec.response,
                "model": rec.model,
                "source": rec.source,
                "category": rec.category,
                "group_id": rec.group_id,
                "meta": rec.meta,
                "content_hash": digest,
                "created_at": now,
            }
        )
    if problems:
        raise ImportProblem(problems)
    batch = 5000
    for start in range(0, len(rows), batch):
        session.execute(insert(Item), rows[start : start + batch])
        if progress is not None:
            progress(len(rows[start : start + batch]))
    session.flush()
    return ImportResult(added=len(rows), unchanged=unchanged)


# -- annotations -------------------------------------------------------------------------------


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
) -> Annotation:
    """Create or replace `user`'s annotation of `item`, appending the new version to history.

    `labels` must already be normalized by the campaign's schema.
    """
    existing = session.exec(
        select(Annotation).where(Annotation.item_id == item.id, Annotation.user_id == user.id)
    ).first()
    now = utcnow()
    if existing is None:
        ann = Annotation(
            campaign_id=item.campaign_id,
            item_id=item.id,  # type: ignore[arg-type]
            user_id=user.id,  # type: ignore[arg-type]
            labels=labels,
            flagged=flagged,
            flag_note=flag_note,
            overridden_rules=list(overridden_rules),
            duration_s=duration_s,
            origin=origin,
            created_at=now,
            updated_at=now,
        )
        action = "import" if origin == "import" else "create"
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
    session.add(
        AnnotationHistory(
            annotation_id=ann.id,  # type: ignore[arg-type]
            item_id=ann.item_id,
            user_id=ann.user_id,
            labels=labels,
            action=action,
            duration_s=duration_s,
            changed_at=now,
        )
    )
    return ann


class LabelImportResult(BaseModel):
    """What a label import did."""

    annotations_added: int
    annotations_updated: int
    unchanged: int
    users_created: list[str]


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
) -> LabelImportResult:
    """Add labels made elsewhere: all or nothing, every bad row reported with its line.

    Unknown annotators are created without a password (`machine` marks them as automatic
    judges). A label already present with another value is a conflict, not an overwrite.
    """
    require_role(actor, "admin", "import labels")
    schema = campaign_schema(session=session, campaign=campaign)
    fields = {f.name: f for f in schema.fields}
    items = {
        ext: iid
        for ext, iid in session.exec(
            select(Item.external_id, Item.id).where(Item.campaign_id == campaign.id)
        ).all()
    }
    problems: list[str] = []
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
    item_rows = (
        {
            it.id: it
            for it in session.exec(select(Item).where(Item.campaign_id == campaign.id)).all()
        }
        if plan
        else {}
    )
    added = updated = unchanged = 0
    for (ext, name), labels, current in plan:
        if current is not None:
            merged = {**current.labels, **labels}
            if merged == current.labels:
                unchanged += 1
                continue
            updated += 1
        else:
            merged = labels
            added += 1
        save_annotation(
            session=session,
            user=users[name],
            item=item_rows[items[ext]],
            labels=merged,
            origin="import",
        )
    session.flush()
    return LabelImportResult(
        annotations_added=added,
        annotations_updated=updated,
        unchanged=unchanged,
        users_created=created,
    )


# -- status ------------------------------------------------------------------------------------


class CampaignStatus(BaseModel):
    """Counts for `annotate status`: humans in the headline keys, judges apart."""

    campaign: str
    schema_id: str
    overlap: int
    items: int
    annotations: int
    annotators: int
    complete_items: int
    flagged: int
    machine_annotations: int
    machine_annotators: int


def campaign_status(*, session: Session, actor: User, campaign: Campaign) -> CampaignStatus:
    """How far `campaign` has come; leads and admins only (annotators see their own progress)."""
    require_role(actor, "lead", "see campaign status")
    schema = campaign_schema(session=session, campaign=campaign)
    n_items = session.exec(
        select(func.count()).select_from(Item).where(Item.campaign_id == campaign.id)
    ).one()
    counts: dict[bool, tuple[int, int]] = {}
    for is_machine, n_ann, n_users in session.exec(
        select(User.is_machine, func.count(), func.count(func.distinct(Annotation.user_id)))
        .join(User, col(User.id) == Annotation.user_id)
        .where(Annotation.campaign_id == campaign.id)
        .group_by(col(User.is_machine))
    ).all():
        counts[bool(is_machine)] = (int(n_ann), int(n_users))
    per_item = (
        select(Annotation.item_id)
        .join(User, col(User.id) == Annotation.user_id)
        .where(Annotation.campaign_id == campaign.id, col(User.is_machine).is_(False))
        .group_by(col(Annotation.item_id))
        .having(func.count() >= campaign.overlap)
        .subquery()
    )
    complete = session.exec(select(func.count()).select_from(per_item)).one()
    flagged = session.exec(
        select(func.count())
        .select_from(Annotation)
        .where(Annotation.campaign_id == campaign.id, col(Annotation.flagged).is_(True))
    ).one()
    human = counts.get(False, (0, 0))
    judge = counts.get(True, (0, 0))
    return CampaignStatus(
        campaign=campaign.name,
        schema_id=schema.id,
        overlap=campaign.overlap,
        items=int(n_items),
        annotations=human[0],
        annotators=human[1],
        complete_items=int(complete),
        flagged=int(flagged),
        machine_annotations=judge[0],
        machine_annotators=judge[1],
    )


def dumps(obj: Any) -> str:
    """Compact JSON for CLI output."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)


# -- releases ----------------------------------------------------------------------------------


def add_release(
    *,
    session: Session,
    campaign: Campaign,
    version: int,
    path: str,
    manifest_sha256: str,
    summary: dict[str, Any],
    created_by: int | None,
) -> Release:
    """Record a release written to `path` (release.create_release checks the role and writes)."""
    if session.exec(
        select(Release).where(Release.campaign_id == campaign.id, Release.version == version)
    ).first():
        raise Conflict(f"Release v{version} of `{campaign.name}` is already recorded")
    row = Release(
        campaign_id=campaign.id,  # type: ignore[arg-type]
        version=version,
        path=path,
        manifest_sha256=manifest_sha256,
        summary=summary,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row


def list_release_rows(*, session: Session, campaign: Campaign) -> list[tuple[Release, str | None]]:
    """`campaign`'s recorded releases, oldest first, each with its creator's name."""
    rows = session.exec(
        select(Release, User.name)
        .join(User, col(User.id) == Release.created_by, isouter=True)
        .where(Release.campaign_id == campaign.id)
        .order_by(col(Release.version))
    ).all()
    return [(release, name) for release, name in rows]


# -- an annotator's own work (My work) ---------------------------------------------------------


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

    Only ever the caller's own labels: labeling is blind. `search` matches item ids and
    prompts (case-insensitive substring).
    """
    require_role(user, "annotator", "see their own labels")
    where: list[Any] = [Annotation.campaign_id == campaign.id, Annotation.user_id == user.id]
    if search.strip():
        pattern = f"%{search.strip().lower()}%"
        where.append(
            or_(
                func.lower(Item.external_id).like(pattern),
                func.lower(func.coalesce(Item.prompt, "")).like(pattern),
            )
        )
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
    require_role(user, "annotator", "see their own labels")
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


# -- user and campaign administration ----------------------------------------------------------


def set_role(*, session: Session, actor: User, name: str, role: str) -> User:
    """Give `name` the role `role`; admins only, and not to themselves (no self-demotion)."""
    require_role(actor, "admin", "change roles")
    check_role(role)
    user = get_user(session=session, name=name)
    if user.id == actor.id and role != user.role:
        raise Conflict("You cannot change your own role; ask another admin")
    if user.is_machine:
        raise Conflict(f"`{name}` is an automatic judge and has no role to change")
    user.role = role
    session.add(user)
    session.flush()
    return user


def set_active(*, session: Session, actor: User, name: str, active: bool) -> User:
    """Allow or stop `name` signing in (their labels stay); admins only, never themselves."""
    require_role(actor, "admin", "activate or deactivate users")
    user = get_user(session=session, name=name)
    if user.id == actor.id and not active:
        raise Conflict("You cannot deactivate yourself; ask another admin")
    user.active = active
    session.add(user)
    session.flush()
    return user


def campaign_members(*, session: Session, actor: User, campaign: Campaign) -> list[str]:
    """Names of the annotators `campaign` is restricted to (empty when open); leads and admins."""
    require_role(actor, "lead", "see campaign members")
    return list(
        session.exec(
            select(User.name)
            .join(CampaignMember, col(CampaignMember.user_id) == User.id)
            .where(CampaignMember.campaign_id == campaign.id)
            .order_by(col(User.name))
        ).all()
    )


def update_campaign(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    guidelines: str | None = None,
    overlap: int | None = None,
) -> Campaign:
    """Change `campaign`'s guidelines or overlap k; admins only. Labels already made stay."""
    require_role(actor, "admin", "change campaigns")
    if overlap is not None:
        if overlap < 1:
            raise ValidationProblem(f"Overlap must be at least 1, got {overlap}")
        campaign.overlap = overlap
    if guidelines is not None:
        campaign.guidelines = guidelines
    session.add(campaign)
    session.flush()
    return campaign
