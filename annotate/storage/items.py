"""Items: store validated import records in one transaction, skipping ones already there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert
from sqlmodel import Session, select

from annotate.accounts.auth import require_role
from annotate.errors import (
    ImportProblem,
)
from annotate.intake.items import ItemRecord
from annotate.storage.models import (
    Campaign,
    Item,
    User,
    utcnow,
)


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
    require_role(actor, "admin", "import items", session=session)
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
