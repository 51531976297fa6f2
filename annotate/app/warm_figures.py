"""Lead figures kept warm: the last figures are served while newer ones compute in the background.

`lead.label_table` keeps a campaign's labels warm; this keeps what the pages compute from them
warm too. A figure (the agreement report, the items' disagreement, an annotator table...) is
kept per process under its name and arguments (the campaign, the filters, the field...) with
the version of the labels it was computed from. When the labels change, the next page load is
served the figure already computed, at once, and one background worker computes the new one
from the labels now served, resting as long as it worked between figures (`BACKGROUND_SHARE`)
so that pages are still served quickly; the page says how old its figures are (`show_age`).
Without this, every new label made the next page recompute every figure while the lead waited.

A figure whose last computation took under `FRESH_WAIT_S` is computed in the page instead, so
a small campaign's pages stay exact; so is any figure while the lead asked for the newest
(`exact`). Only a process's first request of a figure waits for a large one.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import streamlit as st

from annotate.app import lead
from annotate.app.context import AppContext
from annotate.app.render import plain
from annotate.storage.models import Campaign

T = TypeVar("T")
# Figures kept per process (a campaign's page holds about ten; filters and fields add more).
MAX_FIGURES = 96
# A figure that took less than this is recomputed in the page: its page stays exact.
FRESH_WAIT_S = 0.3
EXACT_KEY = "annotate.figures.exact"
# The share of the time the background worker computes while figures keep changing.
BACKGROUND_SHARE = 0.5


@dataclass
class _Figure:
    version: str
    value: Any
    as_of: float  # when the labels it was computed from were loaded (epoch seconds)
    compute_s: float
    pending: str | None = None  # the version being computed in the background
    error: str | None = None


@dataclass(frozen=True)
class Served(Generic[T]):
    """A figure as served: its value, the age of the labels behind it, and whether newer
    labels exist (then a newer figure is being computed)."""

    value: T
    as_of: float
    stale: bool


_FIGURES: OrderedDict[tuple[str, ...], _Figure] = OrderedDict()
_LOCK = threading.Lock()
_JOBS: queue.Queue[Callable[[], None]] = queue.Queue()
_WORKER: list[threading.Thread] = []
_IDLE = threading.Condition()
_BUSY = [0]  # jobs queued or running


def _work() -> None:
    while True:
        job = _JOBS.get()
        started = time.perf_counter()
        try:
            job()
        finally:
            with _IDLE:
                _BUSY[0] -= 1
                _IDLE.notify_all()
        # Rest as long again: the pages being served get the interpreter at least half of
        # the time while annotators keep the figures changing.
        time.sleep((time.perf_counter() - started) * (1 - BACKGROUND_SHARE) / BACKGROUND_SHARE)


def _submit(job: Callable[[], None]) -> None:
    # One worker: background figures take turns, so a page being served competes with one
    # computation at a time for the interpreter, not with all of them.
    with _IDLE:
        _BUSY[0] += 1
        if not _WORKER or not _WORKER[0].is_alive():
            _WORKER[:] = [threading.Thread(target=_work, name="annotate-figures", daemon=True)]
            _WORKER[0].start()
    _JOBS.put(job)


def _labels_as_of(ctx: AppContext, campaign: Campaign, adjudications: bool) -> float:
    state = lead.freshness(ctx, campaign, adjudications=adjudications)
    return state.loaded_at if state is not None else time.time()


def figure(
    ctx: AppContext,
    campaign: Campaign,
    name: str,
    args: Sequence[Any],
    key: str,
    compute: Callable[[], T],
    *,
    adjudications: bool = True,
    spinner: str | None = None,
) -> Served[T]:
    """Figure `name` with `args` for the labels of version `key` (from `lead.label_table`).

    `compute` computes it from the labels served under `key`. Served at once when kept for
    `key`; else the one kept for older labels while the new one computes in the background
    (see the module docstring); else computed here, under `spinner`.
    """
    slot = (ctx.settings.database_url, str(campaign.id), str(adjudications), name, repr(args))
    as_of = _labels_as_of(ctx, campaign, adjudications)
    exact = bool(st.session_state.get(EXACT_KEY))
    with _LOCK:
        kept = _FIGURES.get(slot)
        if kept is not None:
            _FIGURES.move_to_end(slot)
            if kept.version == key:
                return Served(kept.value, kept.as_of, stale=False)
            if not exact and kept.compute_s >= FRESH_WAIT_S:
                if kept.pending is None:
                    kept.pending = key
                    _submit(lambda: _compute_later(slot, key, compute, as_of))
                return Served(kept.value, kept.as_of, stale=True)
    started = time.perf_counter()
    if spinner:
        with st.spinner(spinner):
            value = compute()
    else:
        value = compute()
    _keep(slot, _Figure(key, value, as_of, time.perf_counter() - started))
    return Served(value, as_of, stale=False)


def _keep(slot: tuple[str, ...], made: _Figure) -> None:
    with _LOCK:
        kept = _FIGURES.get(slot)
        if kept is not None and kept.as_of > made.as_of:
            return  # a newer figure was kept meanwhile
        if kept is not None and kept.pending not in (None, made.version):
            made.pending = kept.pending  # a newer one is still computing
        _FIGURES[slot] = made
        _FIGURES.move_to_end(slot)
        while len(_FIGURES) > MAX_FIGURES:
            _FIGURES.popitem(last=False)


def _compute_later(
    slot: tuple[str, ...], key: str, compute: Callable[[], Any], as_of: float
) -> None:
    started = time.perf_counter()
    try:
        value = compute()
    except Exception as exc:  # kept for the page to show; the next page load tries again
        with _LOCK:
            kept = _FIGURES.get(slot)
            if kept is not None:
                kept.pending, kept.error = None, str(exc)
        return
    _keep(slot, _Figure(key, value, as_of, time.perf_counter() - started))


def wait_for_figures(timeout_s: float = 120.0) -> bool:
    """Wait until no figure is computing in the background (False on timeout)."""
    deadline = time.monotonic() + timeout_s
    with _IDLE:
        while _BUSY[0]:
            left = deadline - time.monotonic()
            if left <= 0 or not _IDLE.wait(left):
                return False
    return True


def errors(ctx: AppContext, campaign: Campaign) -> list[str]:
    """What the last background computations of `campaign`'s figures failed with, if any."""
    prefix = (ctx.settings.database_url, str(campaign.id))
    with _LOCK:
        return [f.error for s, f in _FIGURES.items() if s[:2] == prefix and f.error]


def show_age(
    ctx: AppContext, campaign: Campaign, served: Sequence[Served[Any]], *, adjudications: bool
) -> None:
    """A caption with the age of the labels behind the figures on the page, and a button
    that shows the newest once newer labels are loading or newer figures computing."""
    labels = lead.freshness(ctx, campaign, adjudications=adjudications)
    if labels is None and not served:
        return
    as_of = min([s.as_of for s in served] or [labels.loaded_at if labels else time.time()])
    refreshing = any(s.stale for s in served) or bool(labels and labels.refreshing)
    age = max(0, int(time.time() - as_of))
    when = time.strftime("%H:%M:%S", time.gmtime(as_of))
    said = f"Figures from the labels as of {when} UTC ({age} s ago)"
    if refreshing:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.caption(said + "; newer ones are being computed in the background.")
            if st.button("Show the newest", key=f"fresh-{campaign.id}-{adjudications}"):
                lead.wait_for_labels(ctx, campaign, adjudications=adjudications, timeout_s=120.0)
                st.session_state[EXACT_KEY] = True  # this page's next run computes in place
                st.rerun()
    else:
        st.caption(said + ".")
    failed = ([labels.error] if labels and labels.error else []) + errors(ctx, campaign)
    if failed:
        st.caption(f"The last refresh failed ({plain(failed[0][:200])}); the next load retries.")


def end_exact_run() -> None:
    """Called at the end of a page: later runs may serve figures computed before again."""
    st.session_state.pop(EXACT_KEY, None)
