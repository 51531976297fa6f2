"""Each annotator's order over a campaign's items, cached per process with a cursor.

The order (`slots.order_key`) is a seeded permutation per annotator, which no index can serve,
so ranking the fresh items in SQL costs a pass over the whole campaign on every claim. Instead
the order is computed once per annotator and process (one vectorised pass, 8 bytes per item)
and walked from a cursor: items before the cursor are closed for good (labeled by a human,
or finished or skipped by this annotator), so a claim reads a few hundred rows by primary key
however large the campaign. The cache is a hint only: every candidate is still checked in the
claim's own transaction, so several processes may each keep their own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from sqlmodel import Session, col, select

from annotate.labeling.slots import _P, order_constants
from annotate.labeling.statements import newest_item, run
from annotate.storage.db import raw_rows
from annotate.storage.models import Campaign, Item


@dataclass
class UserOrder:
    """One annotator's item ids in their order, and how far every item is closed to them."""

    max_item_id: int
    ids: np.ndarray[tuple[int], np.dtype[np.int64]]
    cursor: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_ORDERS: dict[tuple[str, int, str, int, int], UserOrder] = {}
_GUARD = threading.Lock()


def order_ids(
    item_ids: np.ndarray[tuple[int], np.dtype[np.int64]], seed: int, user_id: int
) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """`item_ids` sorted by `order_key(seed, user_id, id)`, ties by id (vectorised)."""
    a, b, c, d = order_constants(seed, user_id)
    x = (item_ids * a + b) % _P  # every product stays below 2^62
    key = (((x * x + c) % _P) * d + x) % _P
    return item_ids[np.lexsort((item_ids, key))]


def user_order(session: Session, campaign: Campaign, user_id: int) -> UserOrder:
    """The cached order of `user_id` in `campaign`, rebuilt when items were added since.

    The key holds the campaign's creation time, so a database recreated at the same address
    (tests) never meets an order, or a cursor, cached for its predecessor.
    """
    assert campaign.id is not None
    campaign_id, seed = campaign.id, campaign.seed
    newest = run(session, newest_item(), campaign_id=campaign_id).scalar_one()
    newest = int(newest or 0)
    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    key = (url, campaign_id, campaign.created_at.isoformat(), seed, user_id)
    with _GUARD:
        cached = _ORDERS.get(key)
    if cached is not None and cached.max_item_id == newest:
        return cached
    # Plain driver rows: through SQLAlchemy's result processing, reading a million ids took
    # most of a second of CPU.
    rows = raw_rows(session, select(Item.id).where(col(Item.campaign_id) == campaign_id))
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    built = UserOrder(max_item_id=newest, ids=order_ids(ids, seed, user_id))
    with _GUARD:
        _ORDERS[key] = built
    return built
