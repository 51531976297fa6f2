"""Release rows: record a published release and list a campaign's releases."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from annotate.errors import (
    Conflict,
)
from annotate.storage.models import (
    Campaign,
    Release,
    User,
)


def dumps(obj: Any) -> str:
    """Compact JSON for CLI output."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)


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


def lock_releases(*, session: Session, campaign: Campaign) -> list[int]:
    """Take `campaign`'s release lock for this transaction; the versions recorded so far.

    PostgreSQL: a row lock on the campaign (SELECT ... FOR UPDATE), so a second release of
    the same campaign waits here until the first commits, then sees its version. SQLite: the
    transaction already holds the database's write lock (db.begin_write), which does the same.
    """
    session.exec(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update()).all()
    return [
        int(v)
        for v in session.exec(
            select(Release.version)
            .where(Release.campaign_id == campaign.id)
            .order_by(col(Release.version))
        ).all()
    ]


def list_release_rows(*, session: Session, campaign: Campaign) -> list[tuple[Release, str | None]]:
    """`campaign`'s recorded releases, oldest first, each with its creator's name."""
    rows = session.exec(
        select(Release, User.name)
        .join(User, col(User.id) == Release.created_by, isouter=True)
        .where(Release.campaign_id == campaign.id)
        .order_by(col(Release.version))
    ).all()
    return [(release, name) for release, name in rows]
