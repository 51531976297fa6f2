"""Lead figures computed in a separate process, so that pages being served keep the interpreter.

`warm_figures` computes a large campaign's figures in the background. Computed by a thread of
the server, each figure would share the interpreter (Python's global lock) with the pages
being served for as long as it computes: a Dashboard load while annotators submit took
0.3-0.8 s instead of 0.14 s. So, with `Settings.figure_process` (on by default), the figure
worker hands each figure to one child process instead (`result`) and waits for it without
holding the lock. The child (a new interpreter, not a fork: the server is threaded) is started
on first need, started again if it died, and stopped with the server (or when the server's end
of their socket closes); it computes one figure at a time.

A figure is sent as a `Job`: plain data, not a closure. Its computation is named by the
builder that made it: a function decorated with `recipe` (`builder(ctx, table, *args)`
returning the computation), which the child imports by name and calls with its own warm
labels (`lead.label_table`, kept per process like in the server) read at least as new as the
page's. The child answers with the value, the version of the labels it used and when they were
loaded; an exception in the computation comes back as its message.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy.engine import make_url

from annotate.accounts.auth import system_actor
from annotate.app import lead
from annotate.app.context import AppContext
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.models import Campaign, User
from annotate.table import LabelTable

T = TypeVar("T")
P = ParamSpec("P")
_BUILDERS: dict[str, Callable[..., Callable[[], Any]]] = {}
# How often the server checks that the child is still alive while it computes (seconds).
CHECK_S = 0.5
# The child's niceness: background work, below the server's (0) where CPU is short.
NICE = 10
LABELS_ONLY = ""  # a job's builder that only loads the labels (`prepare`)
LOG = logging.getLogger("annotate.figures")


@dataclass(frozen=True)
class Computation(Generic[T]):
    """A figure's computation (call it), and the builder and arguments that made it."""

    run: Callable[[], T]
    builder: str
    args: tuple[Any, ...]

    def __call__(self) -> T:
        return self.run()


def recipe(
    fn: Callable[Concatenate[AppContext, LabelTable, P], Callable[[], T]],
) -> Callable[Concatenate[AppContext, LabelTable, P], Computation[T]]:
    """Register a figure builder: what it returns can also be computed in the child process
    (its arguments after the labels must pickle)."""
    name = f"{fn.__module__}:{fn.__qualname__}"
    _BUILDERS[name] = fn

    @functools.wraps(fn)
    def build(ctx: AppContext, table: LabelTable, *args: P.args, **kw: P.kwargs) -> Computation[T]:
        if kw:
            raise TypeError(f"{name} takes its figure's arguments by position")
        return Computation(fn(ctx, table, *args, **kw), name, tuple(args))

    return build


@dataclass(frozen=True)
class Job:
    """One figure to compute in the child, as plain data."""

    builder: str
    args: tuple[Any, ...]
    settings: Settings
    campaign_id: int
    adjudications: bool
    key: str  # the version of the labels the page asked for (`lead.label_table`)
    actor_id: int | None  # the user asking (None: the server itself, `system_actor`)


@dataclass(frozen=True)
class Result:
    """What the child computed: the value, from the labels of version `key` loaded at `as_of`."""

    value: Any
    key: str
    as_of: float
    compute_s: float


def job_for(
    ctx: AppContext, campaign: Campaign, key: str, compute: Callable[[], Any], adjudications: bool
) -> Job | None:
    """`compute` as a job for the child, or None when it is computed in the server: the
    setting is off, `compute` is not made by a `recipe`, or the database is in this process's
    memory."""
    if not ctx.settings.figure_process or not isinstance(compute, Computation):
        return None
    if _in_memory(ctx.settings.database_url):
        return None
    return Job(
        compute.builder,
        compute.args,
        ctx.settings,
        campaign.id or 0,
        adjudications,
        key,
        ctx.user.id,
    )


def _in_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def result(job: Job | None, compute: Callable[[], Any], key: str, as_of: float) -> Result:
    """`job` computed in the child, or without one `compute` here (from labels `key`
    loaded at `as_of`)."""
    if job is not None:
        return _compute(job)
    started = time.perf_counter()
    value = compute()
    return Result(value, key, as_of, time.perf_counter() - started)


def prepare(settings: Settings, campaign_ids: Sequence[int]) -> threading.Thread | None:
    """Start the child loading these campaigns' labels (both sets the pages read), beside the
    server's own first loads, so that its first figures do not wait for them (`annotate
    serve`'s warming; None when figures are not computed in the child)."""
    if not settings.figure_process or _in_memory(settings.database_url):
        return None

    def run() -> None:
        for campaign_id in campaign_ids:
            for adjudications in (True, False):
                try:
                    _compute(Job(LABELS_ONLY, (), settings, campaign_id, adjudications, "", None))
                except RuntimeError:  # the figures that need them say so
                    LOG.exception("loading labels in the figure process failed")
                    return

    thread = threading.Thread(target=run, name="annotate-figures-prepare", daemon=True)
    thread.start()
    return thread


# -- the server's side -----------------------------------------------------------------------

_LOCK = threading.Lock()  # one job at a time
_CHILD: list[tuple[subprocess.Popen[bytes], Connection]] = []
# The child's start: it imports nothing of the server's main script (multiprocessing's spawn
# would run it again, which a pytest-xdist worker's or a notebook's cannot survive).
_START = "import sys; from annotate.app.figure_process import serve; serve(int(sys.argv[1]))"


def _compute(job: Job) -> Result:
    """Compute `job` in the child (started if it is not running); raises RuntimeError with
    the computation's message when it failed, or when the child died meanwhile."""
    with _LOCK:
        child, conn = _running()
        try:
            conn.send(job)
            while not conn.poll(CHECK_S):
                if child.poll() is not None:
                    raise EOFError
            reply = conn.recv()
        except (EOFError, OSError) as exc:
            _stop_locked()
            raise RuntimeError(
                f"The figure process stopped (exit code {child.returncode}) while computing; "
                "it is started again for the next figure"
            ) from exc
    if isinstance(reply, Result):
        return reply
    raise RuntimeError(str(reply))


def _running() -> tuple[subprocess.Popen[bytes], Connection]:
    if _CHILD and _CHILD[0][0].poll() is None:
        return _CHILD[0]
    _stop_locked()
    mine, theirs = socket.socketpair()
    child = subprocess.Popen(
        [sys.executable, "-c", _START, str(theirs.fileno())], pass_fds=[theirs.fileno()]
    )
    theirs.close()
    conn = Connection(mine.detach())
    conn.send(list(sys.path))  # the child imports the builders the server imports
    _CHILD[:] = [(child, conn)]
    return _CHILD[0]


def pid() -> int | None:
    """The child's process id while it runs (None before its first job)."""
    found = list(_CHILD)
    return found[0][0].pid if found and found[0][0].poll() is None else None


def stop() -> None:
    """Stop the child (when the server stops; a later job starts it again)."""
    if _LOCK.acquire(timeout=1.0):
        try:
            _stop_locked()
        finally:
            _LOCK.release()
    elif _CHILD:  # in the middle of a figure: the worker sees the child end, and fails it
        _CHILD[0][0].kill()


def _stop_locked() -> None:
    if not _CHILD:
        return
    child, conn = _CHILD.pop()
    conn.close()  # the child reads the end of its jobs and exits
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:  # in the middle of a figure: not worth waiting for
        child.kill()
        child.wait(5)


# -- the child's side ------------------------------------------------------------------------


def serve(fd: int) -> None:
    """The child's loop: compute the jobs read from `fd` until the server closes it."""
    os.nice(NICE)  # where the cores are busy, pages and labeling go first
    conn = Connection(fd)
    try:
        sys.path[:] = conn.recv()
    except (EOFError, OSError):
        return
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the server closed its end, or exited
            return
        try:
            reply: Result | str = _run(job)
        except Exception as exc:  # sent to the server, which keeps it for the page to show
            reply = str(exc)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        except Exception as exc:  # a value that does not pickle
            conn.send(f"The figure could not be sent to the server: {exc}")


def _run(job: Job) -> Result:
    engine = db.shared_engine(job.settings.database_url)
    with db.session_scope(engine) as s:
        campaign = s.get(Campaign, job.campaign_id)
        user = system_actor() if job.actor_id is None else s.get(User, job.actor_id)
        if campaign is None or user is None:
            raise RuntimeError(f"Campaign {job.campaign_id} or its lead no longer exists")
        s.expunge_all()
    ctx = AppContext(settings=job.settings, engine=engine, user=user)
    table, key = lead.label_table(ctx, campaign, adjudications=job.adjudications)
    if key != job.key:  # older (or newer) than the page's: read the newest
        lead.wait_for_labels(ctx, campaign, adjudications=job.adjudications, timeout_s=120.0)
        table, key = lead.label_table(ctx, campaign, adjudications=job.adjudications)
    state = lead.freshness(ctx, campaign, adjudications=job.adjudications)
    as_of = state.loaded_at if state is not None else time.time()
    if job.builder == LABELS_ONLY:
        return Result(None, key, as_of, 0.0)
    if job.builder not in _BUILDERS:
        importlib.import_module(job.builder.split(":", 1)[0])  # registers its builders
    build = _BUILDERS.get(job.builder)
    if build is None:
        raise RuntimeError(f"No figure builder named {job.builder}")
    started = time.perf_counter()
    value = build(ctx, table, *job.args)()
    return Result(value, key, as_of, time.perf_counter() - started)
