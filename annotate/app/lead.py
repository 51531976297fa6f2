"""What the lead's pages share: the campaign, the filters, cached labels, opening an item.

Every figure comes from `annotate.review`, which check the lead
role themselves; the caches here sit behind those checks (`labels_version` is called, and
checks the role, before a cached table is handed out).

Review -> Adjudicate: `open_item` puts the campaign and the item's external id in the
Adjudicate page's query parameters (`?campaign=NAME&item=EXTERNAL_ID`, so a link to an item
can be shared between leads) and in session state (`TARGET_KEY`, for when the page is run
without navigation, as under AppTest), then switches page through `AppContext.go`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine

from annotate import review, storage
from annotate.app.context import AppContext
from annotate.app.render import plain
from annotate.review.figures import ReportFilters
from annotate.storage import db
from annotate.storage.models import Campaign, User
from annotate.storage.queries import LabelState, refresh_labels
from annotate.table import LabelTable

CAMPAIGN_PARAM = "campaign"
ITEM_PARAM = "item"
TARGET_KEY = "annotate.adjudicate.target"
# Past this many distinct groups a multiselect is unusable; the lead types group ids instead.
MAX_GROUP_CHOICES = 300


def pick_campaign(ctx: AppContext, *, key: str) -> Campaign | None:
    """The campaign the lead is looking at: `?campaign=`, else the first; a select if several."""
    with ctx.session() as s:
        campaigns = storage.list_campaigns(session=s, actor=ctx.user)
    if not campaigns:
        st.info("There are no campaigns yet. An admin creates them.")
        return None
    names = [c.name for c in campaigns]
    wanted = st.query_params.get(CAMPAIGN_PARAM)
    current = str(wanted) if wanted in names else names[0]
    if len(names) > 1:
        current = str(st.selectbox("Campaign", names, index=names.index(current), key=key))
    if st.query_params.get(CAMPAIGN_PARAM) != current:
        st.query_params[CAMPAIGN_PARAM] = current
    return campaigns[names.index(current)]


# -- cached labels ---------------------------------------------------------------------------
#
# A campaign's labels are loaded once per process and kept warm: when annotators submit, the
# labels changed since the last load are read and merged into the held columns
# (`queries.refresh_labels`: milliseconds of reading, a fraction of a second to rebuild the
# frames at 100,000 items) in a background thread, while the next lead page is served the
# labels already loaded (and every figure cached from them); the page says how old its figures
# are. Only a process's first load of a campaign reads it whole (or its stored snapshot). That
# refresh waits until no lead page is being rendered (`rendering`, at most `PAGE_WAIT_S`), so
# that it does not share the interpreter with a page that is not waiting for it.


@dataclass
class Warm:
    """The labels of one campaign as loaded, and the newer version being loaded, if any."""

    version: tuple[Any, ...]
    table: LabelTable
    loaded_at: float  # when their load began reading (epoch s): what is read later is no older
    state: LabelState | None = None  # what the next refresh continues from
    load_s: float = 0.0  # how long the last load took
    loading: threading.Thread | None = None
    wanted: tuple[Any, ...] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Freshness:
    """How current the labels behind a lead's page are."""

    loaded_at: float
    refreshing: bool
    error: str | None = None


_WARM: dict[tuple[str, int, bool], Warm] = {}
_WARM_LOCK = threading.Lock()
_FIRST_LOADS: dict[tuple[str, int, bool], threading.Lock] = {}
# A campaign with this many labels or more is large: loaded the first time in the background
# when a page can show something else meanwhile (`label_table_or_loading`), its reloads not
# waited for (`label_table`), its figures computed in the background (`warm_figures`).
SMALL_LABELS = 20_000
_LOADING: dict[tuple[str, int, bool], tuple[threading.Thread, float]] = {}
_FAILED: set[tuple[str, int, bool]] = set()
# Campaign label sets kept per process (each holds one table, two while it refreshes).
MAX_WARM = 4
# A campaign whose labels load faster than this is waited for (its pages stay exact); a
# larger one is served the labels already loaded at once, while the new ones load.
FRESH_WAIT_S = 1.0


def _load(
    engine: Engine, actor: User, campaign_id: int, previous: LabelState | None = None
) -> tuple[LabelTable, LabelState]:
    """The campaign's labels, read incrementally from `previous` when given."""
    with db.session_scope(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        return refresh_labels(session=s, actor=actor, campaign=campaign, previous=previous)


_RENDERING = [0, 0.0, 0]  # pages being rendered, since when (monotonic), pages waiting
_RENDERED = threading.Condition()
# The longest a large campaign's refresh is held back while lead pages are being rendered.
PAGE_WAIT_S = 2.0


@contextmanager
def rendering() -> Iterator[None]:
    """Around a lead page's run: large campaigns' label refreshes start after it."""
    with _RENDERED:
        if _RENDERING[0] == 0:
            _RENDERING[1] = time.monotonic()
        _RENDERING[0] += 1
    try:
        yield
    finally:
        with _RENDERED:
            _RENDERING[0] -= 1
            _RENDERED.notify_all()


def _after_pages() -> None:
    with _RENDERED:
        while _RENDERING[0] and not _RENDERING[2]:
            left = _RENDERING[1] + PAGE_WAIT_S - time.monotonic()
            if left <= 0 or not _RENDERED.wait(left):
                return


def _refresh(
    slot: tuple[str, int, bool],
    version: tuple[Any, ...],
    engine: Engine,
    actor: User,
    previous: LabelState | None,
    later: bool = False,
) -> None:
    if later:  # no page waits for it: it lets the pages being rendered finish first
        _after_pages()
    started, read_at = time.perf_counter(), time.time()
    try:
        table, state = _load(engine, actor, slot[1], previous)
    except Exception as exc:  # kept for the page to show; the next page load tries again
        with _WARM_LOCK:
            warm = _WARM.get(slot)
            if warm is not None:
                warm.loading, warm.wanted, warm.error = None, None, str(exc)
        return
    with _WARM_LOCK:
        warm = _WARM.get(slot)
        if warm is not None:
            warm.version, warm.table, warm.loaded_at = version, table, read_at
            warm.state = state
            warm.load_s = time.perf_counter() - started
            warm.loading, warm.wanted, warm.error = None, None, None


def label_table(
    ctx: AppContext, campaign: Campaign, *, adjudications: bool = True
) -> tuple[LabelTable, str]:
    """The campaign's labels, kept warm (see above; role checked on every call), and a key
    naming the version served, for caching what is computed from them.

    With `adjudications=False` the version ignores adjudications: the review and adjudication
    pages read adjudications fresh instead (`current_adjudications`), so that saving one does
    not reload half a million labels.
    """
    with ctx.session() as s:
        version = review.labels_version(
            session=s, actor=ctx.user, campaign=campaign, adjudications=adjudications
        )
    slot = (ctx.settings.database_url, campaign.id or 0, adjudications)
    with _WARM_LOCK:
        warm = _WARM.get(slot)
        # A small campaign reloads in well under FRESH_WAIT_S: its pages wait, and stay exact.
        # A large one (or a slow reload) is not waited for at all: its page shows the labels
        # already loaded, and the reload lets the page's run finish first.
        small = warm is not None and warm.load_s < FRESH_WAIT_S
        small = small and warm is not None and len(warm.table.annotations) < SMALL_LABELS
        if warm is not None and warm.version != version and warm.loading is None:
            warm.wanted = version
            warm.loading = threading.Thread(
                target=_refresh,
                args=(slot, version, ctx.engine, ctx.user, warm.state, not small),
                name=f"annotate-labels-{campaign.id}",
                daemon=True,
            )
            warm.loading.start()
    if warm is not None and warm.loading is not None and small:
        warm.loading.join(FRESH_WAIT_S)
    if warm is None:
        # One first load per campaign: a page arriving while another (or the server's
        # warming) loads it waits for that load instead of reading everything twice.
        with _WARM_LOCK:
            gate = _FIRST_LOADS.setdefault(slot, threading.Lock())
        with gate:
            with _WARM_LOCK:
                loaded = slot in _WARM
            if loaded:
                return label_table(ctx, campaign, adjudications=adjudications)
            return _first_load(ctx, campaign, slot, version)
    with _WARM_LOCK:
        table, served = warm.table, warm.version
    return table, json.dumps([ctx.settings.database_url, *served])


def _first_load(
    ctx: AppContext, campaign: Campaign, slot: tuple[str, int, bool], version: tuple[Any, ...]
) -> tuple[LabelTable, str]:
    started, read_at = time.perf_counter(), time.time()
    table, state = _load(ctx.engine, ctx.user, campaign.id or 0)
    fresh = Warm(
        version=version,
        table=table,
        state=state,
        loaded_at=read_at,
        load_s=time.perf_counter() - started,
    )
    with _WARM_LOCK:
        warm = _WARM.setdefault(slot, fresh)
        while len(_WARM) > MAX_WARM:
            _WARM.pop(next(k for k in _WARM if k != slot))
        _FIRST_LOADS.pop(slot, None)  # whoever waits on it holds it; later loads find _WARM
        table, served = warm.table, warm.version
    return table, json.dumps([ctx.settings.database_url, *served])


def label_table_or_loading(
    ctx: AppContext, campaign: Campaign, *, adjudications: bool = True
) -> tuple[LabelTable, str] | None:
    """`label_table`, or None while a large campaign's first load runs in the background
    (started here: `SMALL_LABELS` labels or more); `loading_since` says since when."""
    slot = (ctx.settings.database_url, campaign.id or 0, adjudications)
    with _WARM_LOCK:
        loaded = slot in _WARM
        loading = _LOADING.get(slot)
        failed = slot in _FAILED
        _FAILED.discard(slot)
    if loaded or failed:  # after a failed background load, the page loads (and reports) it
        return label_table(ctx, campaign, adjudications=adjudications)
    if loading is None:
        with ctx.session() as s:
            version = review.labels_version(
                session=s, actor=ctx.user, campaign=campaign, adjudications=adjudications
            )
        if int(version[1]) < SMALL_LABELS:
            return label_table(ctx, campaign, adjudications=adjudications)

        def load() -> None:
            try:
                label_table(ctx, campaign, adjudications=adjudications)
            except Exception:
                with _WARM_LOCK:
                    _FAILED.add(slot)
                raise
            finally:
                with _WARM_LOCK:
                    _LOADING.pop(slot, None)

        with _WARM_LOCK:
            if slot not in _LOADING and slot not in _WARM:
                thread = threading.Thread(
                    target=load, name=f"annotate-first-load-{campaign.id}", daemon=True
                )
                _LOADING[slot] = (thread, time.time())
                thread.start()
    with _WARM_LOCK:
        if slot in _LOADING:
            return None
    return label_table(ctx, campaign, adjudications=adjudications)


def labels_loading(ctx: AppContext, campaign: Campaign, *, adjudications: bool = True) -> bool:
    """Whether a background first load of `campaign`'s labels is running."""
    with _WARM_LOCK:
        return (ctx.settings.database_url, campaign.id or 0, adjudications) in _LOADING


def loading_since(ctx: AppContext, campaign: Campaign, *, adjudications: bool = True) -> float:
    """When the background first load of `campaign`'s labels started (epoch seconds; now
    when none is running)."""
    with _WARM_LOCK:
        found = _LOADING.get((ctx.settings.database_url, campaign.id or 0, adjudications))
    return found[1] if found is not None else time.time()


def freshness(
    ctx: AppContext, campaign: Campaign, *, adjudications: bool = True
) -> Freshness | None:
    """When the labels served for `campaign` were loaded, and whether newer ones are loading."""
    with _WARM_LOCK:
        warm = _WARM.get((ctx.settings.database_url, campaign.id or 0, adjudications))
        if warm is None:
            return None
        return Freshness(warm.loaded_at, warm.loading is not None, warm.error)


def label_count(ctx: AppContext, campaign: Campaign, *, adjudications: bool = True) -> int | None:
    """How many labels the table served for `campaign` holds (None before its first load)."""
    with _WARM_LOCK:
        warm = _WARM.get((ctx.settings.database_url, campaign.id or 0, adjudications))
        return None if warm is None else len(warm.table.annotations)


def wait_for_labels(
    ctx: AppContext, campaign: Campaign, *, adjudications: bool = True, timeout_s: float = 60.0
) -> bool:
    """Wait until no newer labels are loading for `campaign` (False on timeout)."""
    with _WARM_LOCK:
        warm = _WARM.get((ctx.settings.database_url, campaign.id or 0, adjudications))
        thread = warm.loading if warm is not None else None
    if thread is not None:
        with _RENDERED:  # a page waits for it: it does not wait for the pages
            _RENDERING[2] += 1
            _RENDERED.notify_all()
        try:
            thread.join(timeout_s)
        finally:
            with _RENDERED:
                _RENDERING[2] -= 1
        return not thread.is_alive()
    return True


def show_freshness(ctx: AppContext, campaign: Campaign, *, adjudications: bool = True) -> None:
    """A caption with the age of the figures, and a button once newer labels are loading."""
    state = freshness(ctx, campaign, adjudications=adjudications)
    if state is None:
        return
    age = max(0, int(time.time() - state.loaded_at))
    as_of = time.strftime("%H:%M:%S", time.gmtime(state.loaded_at))
    if state.refreshing:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.caption(
                f"Figures from the labels as of {as_of} UTC ({age} s ago); newer labels are "
                "loading in the background."
            )
            if st.button("Show the newest", key=f"fresh-{campaign.id}-{adjudications}"):
                wait_for_labels(ctx, campaign, adjudications=adjudications, timeout_s=120.0)
                st.rerun()
    else:
        st.caption(f"Figures from the labels as of {as_of} UTC ({age} s ago).")
    if state.error:
        st.caption(f"The last refresh failed ({plain(state.error[:200])}); the next load retries.")


def filters_key(filters: ReportFilters) -> str:
    """A stable cache key for `filters`."""
    return json.dumps(filters.model_dump(mode="json"), sort_keys=True)


def filter_bar(ctx: AppContext, table: LabelTable, *, key: str) -> ReportFilters:
    """Category, model, group and intent filters in one row; empty means everything."""
    options = review.campaign_filters(table, actor=ctx.user)
    cols = st.columns(4)
    categories = cols[0].multiselect("Category", options["categories"], key=f"{key}-category")
    models = cols[1].multiselect("Model", options["models"], key=f"{key}-model")
    if len(options["groups"]) <= MAX_GROUP_CHOICES:
        groups = cols[2].multiselect("Group", options["groups"], key=f"{key}-group")
    else:
        typed = cols[2].text_input(
            "Group ids", key=f"{key}-group-text", placeholder="comma-separated"
        )
        groups = [g.strip() for g in typed.split(",") if g.strip()]
    intents = cols[3].multiselect(
        "Intent",
        options["intents"],
        key=f"{key}-intent",
        help="The adjudicated intent, else the one most annotators chose.",
    )
    return ReportFilters(
        categories=tuple(categories),
        models=tuple(models),
        groups=tuple(groups),
        intents=tuple(intents),
    )


def open_item(ctx: AppContext, campaign: str, external_id: str) -> None:
    """Go to the Adjudicate page for one item (see the module docstring)."""
    st.session_state[TARGET_KEY] = {CAMPAIGN_PARAM: campaign, ITEM_PARAM: external_id}
    if "adjudicate" in ctx.pages:
        ctx.go("adjudicate", **{CAMPAIGN_PARAM: campaign, ITEM_PARAM: external_id})
    else:
        st.info(f"Item {plain(external_id)} is ready on the Adjudicate page.")


def target() -> tuple[str | None, str | None]:
    """(campaign, external id) the Adjudicate page should show: URL first, then session."""
    campaign = st.query_params.get(CAMPAIGN_PARAM)
    item = st.query_params.get(ITEM_PARAM)
    if item:
        return campaign, item
    saved = st.session_state.get(TARGET_KEY) or {}
    return saved.get(CAMPAIGN_PARAM, campaign), saved.get(ITEM_PARAM)


def fmt(value: Any, digits: int = 3) -> str:
    """A number for display; a dash when undefined."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"{value:.{digits}f}"
