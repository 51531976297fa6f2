"""Lead figures kept warm: the last figures are served while newer ones compute in the background.

`lead.label_table` keeps a campaign's labels warm; this keeps what the pages compute from them
warm too. A figure (the agreement report, the items' disagreement, an annotator table...) is
kept per process under its name and arguments (the campaign, the filters, the field...) with
the version of the labels it was computed from. When the labels change, the next page load is
served the figure already computed, at once, and one background worker computes the new one,
resting as long as it worked between figures (`BACKGROUND_SHARE`); the page says how old its
figures are (`show_age`). The worker computes a figure made by a `figure_process.recipe` in a
separate process (`Settings.figure_process`), from that process's labels, which may be newer
than the page's; other figures (and all with the setting off) in a thread of the server.

In a campaign of fewer than `lead.SMALL_LABELS` labels, a figure whose last computation took
under `FRESH_WAIT_S` is computed in the page instead, so a small campaign's pages stay exact;
so is any figure while the lead asked for the newest (`exact`), and a small campaign's first.
A large campaign's first is handed to the worker, ahead of any recomputation, and the page
waits for it only as long as a small figure takes (`FRESH_WAIT_S`, and only when nothing else
is computing). One not ready by then is `Served` not `ready`: the page shows a placeholder
(`show_waiting`) and `keep_updated` reruns the page once it is computed. `warm` starts the
first computations before any page asks (`annotate serve` warms its active campaigns).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import streamlit as st

from annotate.app import figure_process, lead
from annotate.app.context import AppContext, fragment
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
    ready: bool = True  # False until its first computation finished
    asked: float = 0.0  # when its first computation was asked for (epoch seconds)
    failed_at: float = 0.0  # when its first computation last failed (monotonic seconds)


@dataclass(frozen=True)
class Served(Generic[T]):
    """A figure as served: its value, the age of the labels behind it, and whether newer
    labels exist (then a newer figure is being computed). Not `ready` while its first
    computation runs (`computing`) or after it failed: `value` is then None, `asked` says
    since when it is computing (epoch seconds), and `error` what the last try failed with."""

    value: T
    as_of: float
    stale: bool
    ready: bool = True
    asked: float = 0.0
    error: str | None = None
    computing: bool = False
    slot: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wanted:
    """A figure a page shows, as `figure` takes it: for warming it before the page asks."""

    name: str
    args: tuple[Any, ...]
    compute: Callable[[], Any]
    adjudications: bool = True


_FIGURES: OrderedDict[tuple[str, ...], _Figure] = OrderedDict()
_LOCK = threading.Lock()
# (priority, job) in the order asked: a page waits for it, a first computation, a recomputation.
WAITED, FIRST, AGAIN = 2, 1, 0
_JOBS: list[tuple[int, Callable[[], None], tuple[str, ...]]] = []  # and the figure's slot
_PAGES = [0, 0.0]  # lead pages being rendered, and since when (monotonic seconds)
# The longest a first computation is held back while lead pages are being rendered.
PAGE_FIRST_S = 2.0
_WORKER: list[threading.Thread] = []
_IDLE = threading.Condition()
_BUSY = [0]  # jobs queued or running
# Seconds between a page's checks that a figure it shows as computing is ready.
POLL_S = 1.0
# A first computation that failed is tried again by a page load this long after.
RETRY_S = 10.0
WAITING_PREFIX = "Computing"


def _next_job() -> Callable[[], None]:
    # A page waiting for its figure first; then first computations, except while a lead page
    # is being rendered (for at most PAGE_FIRST_S: the page gets the interpreter); then, once
    # the worker has rested (see _work), a recomputation of a figure already shown.
    with _IDLE:
        while True:
            now = time.monotonic()
            held = _PAGES[1] + PAGE_FIRST_S - now if _PAGES[0] else 0.0
            best = max(_JOBS, key=lambda j: j[0], default=None)  # the first of the highest
            if best is not None and (best[0] == WAITED or (best[0] == FIRST and held <= 0)):
                _JOBS.remove(best)
                return best[1]
            rest = max(_REST_UNTIL[0] - now, held)
            if best is not None and rest <= 0:
                _JOBS.remove(best)
                return best[1]
            _IDLE.wait(rest if best is not None else None)


_REST_UNTIL = [0.0]


def _promote(slot: tuple[str, ...]) -> None:
    with _IDLE:
        for i, (priority, job, queued) in enumerate(_JOBS):
            if queued == slot and priority == FIRST:
                _JOBS[i] = (WAITED, job, queued)


@contextmanager
def rendering() -> Iterator[None]:
    """Around a lead page's run: the worker starts no new figure meanwhile (bounded by
    `PAGE_FIRST_S`), unless the page itself waits for it."""
    with _IDLE:
        if _PAGES[0] == 0:
            _PAGES[1] = time.monotonic()
        _PAGES[0] += 1
    try:
        with lead.rendering():  # and labels refresh after it
            yield
    finally:
        with _IDLE:
            _PAGES[0] -= 1
            _IDLE.notify_all()


def _work() -> None:
    while True:
        job = _next_job()
        started = time.perf_counter()
        try:
            job()
        finally:
            worked = time.perf_counter() - started
            with _IDLE:
                _BUSY[0] -= 1
                # Rest as long again: the pages being served get the interpreter at least
                # half of the time while annotators keep the figures changing.
                _REST_UNTIL[0] = time.monotonic() + worked * (1 - BACKGROUND_SHARE) / max(
                    BACKGROUND_SHARE, 1e-9
                )
                _IDLE.notify_all()


def _submit(job: Callable[[], None], slot: tuple[str, ...], *, priority: int = AGAIN) -> int:
    """Queue `job` for the worker; how many jobs were queued or running before it."""
    # One worker: background figures take turns, so a page being served competes with one
    # computation at a time for the interpreter, not with all of them.
    with _IDLE:
        # What runs before it: the job running, if any, and those of its priority or above.
        queued = [j for j in _JOBS if j[0] >= priority]
        ahead = _BUSY[0] - len(_JOBS) + len(queued)
        _BUSY[0] += 1
        if not _WORKER or not _WORKER[0].is_alive():
            _WORKER[:] = [threading.Thread(target=_work, name="annotate-figures", daemon=True)]
            _WORKER[0].start()
        _JOBS.append((priority, job, slot))
        _IDLE.notify_all()
    return ahead


def _labels_as_of(ctx: AppContext, campaign: Campaign, adjudications: bool) -> float:
    state = lead.freshness(ctx, campaign, adjudications=adjudications)
    return state.loaded_at if state is not None else time.time()


def _slot(
    ctx: AppContext, campaign: Campaign, name: str, args: Sequence[Any], adjudications: bool
) -> tuple[str, ...]:
    return (ctx.settings.database_url, str(campaign.id), str(adjudications), name, repr(args))


def _served(slot: tuple[str, ...], kept: _Figure, *, stale: bool = False) -> Served[Any]:
    if kept.ready:
        return Served(kept.value, kept.as_of, stale=stale, slot=slot)
    return Served(
        None,
        kept.as_of,
        stale=False,
        ready=False,
        asked=kept.asked,
        error=kept.error,
        computing=kept.pending is not None,
        slot=slot,
    )


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
    block: bool = False,
) -> Served[T]:
    """Figure `name` with `args` for the labels of version `key` (from `lead.label_table`).

    `compute` computes it from the labels served under `key`. Served at once when kept for
    `key`; else the one kept for older labels while the new one computes in the background
    (see the module docstring); else computed here (under `spinner`) when it is small, when
    the lead asked for the newest, or with `block` (a page that cannot go on without it);
    else not `ready` while the worker computes it.
    """
    exact = bool(st.session_state.get(EXACT_KEY))
    if spinner and (exact or block):
        with st.spinner(spinner):
            return _serve(ctx, campaign, name, args, key, compute, adjudications, exact, block)
    return _serve(ctx, campaign, name, args, key, compute, adjudications, exact, block)


def _serve(
    ctx: AppContext,
    campaign: Campaign,
    name: str,
    args: Sequence[Any],
    key: str,
    compute: Callable[[], T],
    adjudications: bool,
    exact: bool,
    block: bool,
) -> Served[T]:
    slot = _slot(ctx, campaign, name, args, adjudications)
    as_of = _labels_as_of(ctx, campaign, adjudications)
    labels = lead.label_count(ctx, campaign, adjudications=adjudications)
    small = labels is None or labels < lead.SMALL_LABELS
    block = block or small
    done = threading.Event()
    later = functools.partial(
        _compute_later, ctx, campaign, slot, key, compute, as_of, adjudications
    )
    with _LOCK:
        kept = _FIGURES.get(slot)
        if kept is not None:
            _FIGURES.move_to_end(slot)
            # Computed for these labels, or (in the figure process) from labels loaded later.
            if kept.ready and (kept.version == key or kept.as_of > as_of):
                return _served(slot, kept)
            # A large campaign's page recomputes nothing after a submit, however quick each
            # figure: a page holds about ten, and together they would cost it seconds.
            if kept.ready and not exact and (kept.compute_s >= FRESH_WAIT_S or not small):
                if kept.pending is None:
                    kept.pending = key
                    _submit(later, slot)
                return _served(slot, kept, stale=True)
            if not kept.ready and not (exact or block):
                _promote(slot)  # a lead waits for it now: before figures nobody asked for yet
                if kept.pending is None and time.monotonic() - kept.failed_at >= RETRY_S:
                    kept.pending, kept.asked = key, time.time()  # the error shows meanwhile
                    _submit(later, slot, priority=WAITED)
                return _served(slot, kept)
        ahead = 0
        if kept is None and not (exact or block):
            _keep_locked(slot, _Figure("", None, as_of, 0.0, key, ready=False, asked=time.time()))
            ahead = _submit(functools.partial(later, done), slot, priority=WAITED)
    if kept is None and not (exact or block):
        # Nothing else computing: wait as long as a small figure takes, so that a small
        # campaign's page is complete at once. Else the page shows where it will be.
        if ahead == 0:
            done.wait(FRESH_WAIT_S)
        with _LOCK:
            now = _FIGURES.get(slot)
            if now is None:  # pushed out by other figures meanwhile: the next run asks again
                return Served(None, as_of, False, False, time.time(), computing=True)  # type: ignore[arg-type]
            return _served(slot, now)
    started = time.perf_counter()
    value = compute()
    _keep(slot, _Figure(key, value, as_of, time.perf_counter() - started))
    return Served(value, as_of, stale=False, slot=slot)


def _keep(slot: tuple[str, ...], made: _Figure, asked: str | None = None) -> None:
    with _LOCK:
        _keep_locked(slot, made, asked)


def _keep_locked(slot: tuple[str, ...], made: _Figure, asked: str | None = None) -> None:
    """Keep `made` (computed in the background when it was `asked` for that version)."""
    kept = _FIGURES.get(slot)
    if kept is not None and kept.ready and kept.as_of > made.as_of:
        if kept.pending is not None and kept.pending == asked:
            kept.pending = None  # a newer figure was kept meanwhile: this job is over
        return
    if kept is not None and kept.pending not in (None, made.version, asked):
        made.pending = kept.pending  # a newer one is still computing
    _FIGURES[slot] = made
    _FIGURES.move_to_end(slot)
    while len(_FIGURES) > MAX_FIGURES:
        _FIGURES.popitem(last=False)


def _compute_later(
    ctx: AppContext,
    campaign: Campaign,
    slot: tuple[str, ...],
    key: str,
    compute: Callable[[], Any],
    as_of: float,
    adjudications: bool,
    done: threading.Event | None = None,
) -> None:
    job = figure_process.job_for(ctx, campaign, key, compute, adjudications)  # None: here
    try:
        try:
            got = figure_process.result(job, compute, key, as_of)
        except Exception as exc:  # kept for the page to show; the next page load tries again
            with _LOCK:
                kept = _FIGURES.get(slot)
                if kept is not None:
                    kept.pending, kept.error = None, str(exc)
                    kept.failed_at = time.monotonic()
            return
        _keep(slot, _Figure(got.key, got.value, got.as_of, got.compute_s), asked=key)
    finally:
        if done is not None:
            done.set()


def kept(
    ctx: AppContext,
    campaign: Campaign,
    name: str,
    args: Sequence[Any],
    *,
    adjudications: bool = True,
) -> bool:
    """Whether figure `name` with `args` has been computed (for any labels) and is kept."""
    with _LOCK:
        found = _FIGURES.get(_slot(ctx, campaign, name, args, adjudications))
        return found is not None and found.ready


def warm(ctx: AppContext, campaign: Campaign, key: str, wanted: Sequence[Wanted]) -> int:
    """Start computing `wanted` for the labels of version `key` in the background, where no
    figure is kept yet (no Streamlit run needed); how many were started."""
    started = 0
    for w in wanted:
        slot = _slot(ctx, campaign, w.name, w.args, w.adjudications)
        as_of = _labels_as_of(ctx, campaign, w.adjudications)
        with _LOCK:
            if slot in _FIGURES:
                continue
            _keep_locked(slot, _Figure("", None, as_of, 0.0, key, ready=False, asked=time.time()))
            job = (ctx, campaign, slot, key, w.compute, as_of, w.adjudications)
            _submit(functools.partial(_compute_later, *job), slot, priority=FIRST)
        started += 1
    return started


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
    shown = [s for s in served if s.ready]
    as_of = min([s.as_of for s in shown] or [labels.loaded_at if labels else time.time()])
    refreshing = any(s.stale for s in shown) or bool(labels and labels.refreshing)
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
    computing = {s.slot for s in served if s.computing}
    if computing:
        st.caption(
            f"{len(computing)} figure{'s are' if len(computing) > 1 else ' is'} being computed "
            "for the first time since the server started; the page shows "
            f"{'them' if len(computing) > 1 else 'it'} as soon as each is ready."
        )
    failed = ([labels.error] if labels and labels.error else []) + errors(ctx, campaign)
    if failed:
        st.caption(f"The last refresh failed ({plain(failed[0][:200])}); the next load retries.")


def end_exact_run() -> None:
    """Called at the end of a page: later runs may serve figures computed before again."""
    st.session_state.pop(EXACT_KEY, None)


def show_waiting(served: Served[Any], what: str) -> None:
    """In place of a figure not computed yet (`served.ready` False): what is computing and
    since when, and what its last try failed with, if it did."""
    failed = "" if served.error is None else f"The last try failed: {plain(served.error[:200])}. "
    if not served.computing:
        st.warning(f"Computing {what} failed. {failed}A later load tries again.")
        return
    age = max(0, int(time.time() - served.asked))
    st.info(
        f"{WAITING_PREFIX} {what}… started {age} s ago. {failed}It appears here when it is ready.",
        icon=":material/hourglass_top:",
    )


def keep_updated(
    ctx: AppContext,
    served: Sequence[Served[Any]],
    *,
    labels: tuple[Campaign, bool] | None = None,
) -> None:
    """While a figure of the page is computing for the first time (or, with `labels`, while
    that campaign's labels load for the first time, `adjudications` or not): check every
    `POLL_S` (a fragment the browser reruns) and rerun the page once one is ready or failed.
    Costs nothing once every figure is shown: a page run without one does not register it."""
    waiting = tuple(sorted({s.slot for s in served if s.computing}))
    if waiting or labels is not None:
        fragment(_poll, run_every=POLL_S)(ctx, waiting, labels)


def _poll(
    ctx: AppContext,
    slots: tuple[tuple[str, ...], ...],
    labels: tuple[Campaign, bool] | None,
) -> None:
    with _LOCK:
        kept = [_FIGURES.get(slot) for slot in slots]
    if any(f is None or f.ready or f.pending is None for f in kept):
        st.rerun(scope="app")
    if labels is not None and not lead.labels_loading(ctx, labels[0], adjudications=labels[1]):
        st.rerun(scope="app")


def show_loading(ctx: AppContext, campaign: Campaign, *, adjudications: bool) -> None:
    """In place of a page whose campaign's labels load for the first time: since when, and
    a check that reruns the page once they are loaded."""
    age = max(0, int(time.time() - lead.loading_since(ctx, campaign, adjudications=adjudications)))
    st.info(
        f"Loading the labels of {plain(campaign.name)}… started {age} s ago. The figures "
        "follow when they are loaded.",
        icon=":material/hourglass_top:",
    )
    keep_updated(ctx, [], labels=(campaign, adjudications))
