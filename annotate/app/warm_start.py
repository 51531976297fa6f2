"""Lead figures computed when the server starts, before any lead opens a page.

At 100,000 items a campaign's first Dashboard needs about ten seconds of figures; a process
that only starts them when the first lead arrives makes that lead wait for them. So when
`annotate serve` starts, one thread loads the labels of the `Settings.warm_campaigns`
campaigns labeled most recently (at most 4: each holds its labels in memory, twice over for
the two label sets the pages read) and hands the figures the Dashboard and the Review queue
show first to the figure worker (`warm_figures.warm`), cheapest first. Campaigns nobody
labels stay cold until a lead opens them. Figures a lead asks for meanwhile are not
computed twice: the page finds them computing. When figures compute in the figure process,
that process loads the same labels meanwhile (`figure_process.prepare`).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from annotate.accounts.auth import system_actor
from annotate.app import dashboard_figures, figure_process, lead, warm_figures
from annotate.app.context import AppContext
from annotate.app.pages import review
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.models import Annotation, Campaign

LOG = logging.getLogger("annotate.warm")


def active_campaigns(*, session: Session, limit: int) -> list[Campaign]:
    """The `limit` campaigns whose labels were written most recently (none without labels)."""
    if limit <= 0:
        return []
    # Per campaign, its latest label from the (campaign_id, updated_at) index: one index seek
    # per campaign, where a GROUP BY over the annotations read all of them.
    last = (
        select(func.max(col(Annotation.updated_at)))
        .where(col(Annotation.campaign_id) == col(Campaign.id))
        .scalar_subquery()
    )
    found = session.exec(
        select(Campaign).where(last.is_not(None)).order_by(last.desc()).limit(limit)
    ).all()
    return list(found)


def warm_campaigns(settings: Settings, engine: Engine) -> int:
    """Load the labels of the active campaigns and start their lead figures (blocking while
    the labels load; the figures compute in the background); how many figures were started."""
    ctx = AppContext(settings=settings, engine=engine, user=system_actor())
    with db.session_scope(engine) as s:
        campaigns = active_campaigns(session=s, limit=settings.warm_campaigns)
        for campaign in campaigns:
            s.expunge(campaign)
    figure_process.prepare(settings, [c.id or 0 for c in campaigns])
    started = 0
    for campaign in campaigns:
        table, key = lead.label_table(ctx, campaign)
        started += warm_figures.warm(ctx, campaign, key, dashboard_figures.lead_figures(ctx, table))
        table, key = lead.label_table(ctx, campaign, adjudications=False)
        started += warm_figures.warm(ctx, campaign, key, review.lead_figures(ctx, table))
    return started


def start(settings: Settings, engine: Engine) -> threading.Thread | None:
    """`warm_campaigns` in a background thread (None when `warm_campaigns` is 0)."""
    if settings.warm_campaigns <= 0:
        return None

    def run() -> None:
        try:
            started = warm_campaigns(settings, engine)
        except Exception:  # a page load later loads and reports the same failure itself
            LOG.exception("warming the lead figures failed")
            return
        LOG.info("warming %d lead figures in the background", started)

    thread = threading.Thread(target=run, name="annotate-warm-start", daemon=True)
    thread.start()
    return thread
