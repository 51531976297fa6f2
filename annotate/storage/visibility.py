"""What a viewer may see of an item: labeling is blind, so annotators see the text only.

An annotator sees the prompt (or conversation), the response, an opaque handle naming the item
(`#` and 10 hex digits, from the campaign and the item's row, so it reveals neither the item's
id nor its place) and the keys the campaign lists in `visible_metadata` (none by default).
Item ids such as `seed-harm-004b`, categories such as `contrast_harmful`, the model's name and
earlier annotators' labels imported as metadata would otherwise give the answer away. Leads
and admins see everything. Every page showing an item to someone goes through `view_item` or
`item_name`; only what they return is sent to the browser.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from annotate.accounts.auth import has_role, require_role
from annotate.errors import ValidationProblem
from annotate.storage.models import Campaign, Item, User

# Item attributes a campaign may show, by the name annotators know them by.
ATTRIBUTES = {"model": "model", "category": "category", "group": "group_id", "source": "source"}
MAX_KEY = 200
NEVER = ("external_id",)
HANDLE = re.compile(r"#[0-9a-f]{10}")


@dataclass(frozen=True)
class ItemView:
    """An item as one viewer may see it.

    `name` is how the item is referred to (its id for leads, its handle for annotators);
    `details` the attributes and metadata shown, in order; `external_id` is None when hidden.
    """

    handle: str
    name: str
    prompt: str | None
    conversation: list[dict[str, Any]] | None
    response: str
    external_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    everything: bool = False


def sees_everything(viewer: User | None) -> bool:
    """Whether `viewer` sees items whole: active leads and admins (as held in memory)."""
    return has_role(viewer, "lead")


def item_handle(*, campaign: Campaign, item_id: int) -> str:
    """The opaque, stable name of item row `item_id` in `campaign`: `#` and 10 hex digits."""
    digest = hashlib.blake2b(
        f"{campaign.id}:{campaign.seed}:{item_id}".encode(),
        digest_size=5,
        person=b"annotate-item",
    )
    return "#" + digest.hexdigest()


def _details(item: Item, keys: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    meta = item.meta or {}
    for key in keys:
        attribute = ATTRIBUTES.get(key)
        value = getattr(item, attribute) if attribute is not None else meta.get(key)
        if value is not None and value != "":
            out[key] = value
    return out


def view_item(*, item: Item, campaign: Campaign, viewer: User | None) -> ItemView:
    """What `viewer` may see of `item` (of `campaign`): everything for leads and admins; the
    text, the handle and the campaign's `visible_metadata` keys for everyone else."""
    if item.campaign_id != campaign.id:
        raise ValidationProblem(f"Item {item.id} is not in campaign `{campaign.name}`")
    handle = item_handle(campaign=campaign, item_id=item.id or 0)
    everything = sees_everything(viewer)
    if everything:
        keys = [*ATTRIBUTES, *(k for k in (item.meta or {}) if k not in ATTRIBUTES)]
    else:
        keys = list(campaign.visible_metadata or [])
    return ItemView(
        handle=handle,
        name=item.external_id if everything else handle,
        prompt=item.prompt,
        conversation=item.conversation,
        response=item.response,
        external_id=item.external_id if everything else None,
        details=_details(item, keys),
        everything=everything,
    )


def item_name(*, item: Item, campaign: Campaign, viewer: User | None) -> str:
    """How `viewer` may refer to `item`: its id for leads and admins, its handle otherwise."""
    if item.campaign_id != campaign.id:
        raise ValidationProblem(f"Item {item.id} is not in campaign `{campaign.name}`")
    if sees_everything(viewer):
        return item.external_id
    return item_handle(campaign=campaign, item_id=item.id or 0)


def clean_keys(keys: Iterable[str]) -> list[str]:
    """`keys` stripped and without repeats; ValidationProblem names a key that cannot be one."""
    out: list[str] = []
    for raw in keys:
        key = str(raw).strip()
        if not key or len(key) > MAX_KEY:
            raise ValidationProblem(
                f"Visible metadata key `{key[:50]}` must be a metadata key of 1-{MAX_KEY} "
                "characters (or model, category, group, source)"
            )
        if key in NEVER:
            raise ValidationProblem(
                f"`{key}` is not a metadata key annotators may see: they see an opaque "
                "handle instead of the item id"
            )
        if key not in out:
            out.append(key)
    return out


def set_visible_metadata(
    *, session: Session, actor: User, campaign: Campaign, keys: Iterable[str]
) -> Campaign:
    """Show `campaign`'s annotators exactly `keys` (attributes or metadata keys); admins only.

    An empty list shows them the text only. Keys no item has yet are kept (for items to come).
    """
    require_role(actor, "admin", "choose what annotators see", session=session)
    campaign.visible_metadata = clean_keys(keys)
    session.add(campaign)
    session.flush()
    return campaign


def metadata_keys(*, session: Session, actor: User, campaign: Campaign) -> list[str]:
    """Keys a campaign could show: the attributes, then every metadata key its items have."""
    require_role(actor, "lead", "list metadata keys", session=session)
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        query = text(
            "SELECT DISTINCT j.key FROM item, json_each(item.meta) AS j "
            "WHERE item.campaign_id = :c AND json_type(item.meta) = 'object'"
        )
        found = {str(k) for (k,) in session.execute(query, {"c": campaign.id})}
    elif dialect == "postgresql":
        query = text(
            "SELECT DISTINCT k FROM item, json_object_keys(item.meta) AS k "
            "WHERE item.campaign_id = :c AND json_typeof(item.meta) = 'object'"
        )
        found = {str(k) for (k,) in session.execute(query, {"c": campaign.id})}
    else:  # pragma: no cover - the two supported databases are above
        rows = session.exec(select(Item.meta).where(col(Item.campaign_id) == campaign.id))
        found = {str(k) for meta in rows for k in (meta or {})}
    return [*ATTRIBUTES, *sorted(found - set(ATTRIBUTES))]
