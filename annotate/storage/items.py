"""Items: store validated import records in one transaction, skipping ones already there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
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
    new: list[ItemRecord] = []
    unchanged = 0
    for rec in records:
        prior = existing.get(rec.external_id)
        if prior is None:
            new.append(rec)
        elif prior == rec.content_hash():
            unchanged += 1
        else:
            problems.append(
                f"{source}:{rec.line}: field `id`: item `{rec.external_id}` is already in "
                f"campaign `{campaign.name}` with different content"
            )
    if problems:
        raise ImportProblem(problems)
    del existing
    now = utcnow()
    batch = 5000
    for start in range(0, len(new), batch):
        # Rows are made a batch at a time, not a million dicts beside the records at once.
        rows = [_row(campaign.id or 0, rec, now) for rec in new[start : start + batch]]
        session.execute(insert(Item), rows)
        if progress is not None:
            progress(len(rows))
    session.flush()
    return ImportResult(added=len(new), unchanged=unchanged)


def _row(campaign_id: int, rec: ItemRecord, now: datetime) -> dict[str, Any]:
    """The item table's row for `rec`."""
    return {
        "campaign_id": campaign_id,
        "external_id": rec.external_id,
        "prompt": rec.prompt,
        "conversation": [t.model_dump() for t in rec.conversation] if rec.conversation else None,
        "response": rec.response,
        "model": rec.model,
        "source": rec.source,
        "category": rec.category,
        "group_id": rec.group_id,
        "meta": rec.meta,
        "content_hash": rec.content_hash(),
        "created_at": now,
    }
