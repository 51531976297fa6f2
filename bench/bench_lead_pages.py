"""Lead pages over HTTP while annotators work: Dashboard and Review queue load times.

Usage: python bench/bench_lead_pages.py [--items N] [--seconds S] [--every S] [--code DIR]
       [--db PATH] [--arrive-after S]
Setup (not timed): `bench_release.setup`, a campaign of N items (default 100,000) with three
human labels each, on SQLite, and a lead with a password; with `--db PATH` built there once and
reused by later runs. Then, for each page (Dashboard, then Review queue), a fresh
`annotate serve` on a free loopback port, on its own copy of that database: the lead signs in
over HTTP (`POST /signin`), waits `--arrive-after` s (default 0; the server may warm figures
meanwhile) and drives the page over Streamlit's websocket with its protobuf messages
(tests/stclient.py, no browser). A page load is one full run of the page, timed from sending
the rerun to the script-finished message. Timed: the first load on the fresh server (first
render: a figure still computing may show as a placeholder), then until the page is complete
(no placeholder left: the bench reruns the fragment the page asks the browser to rerun, at its
interval, as a browser does), then a load every `--every` s (default 1.5) for S s (default 30)
while a writer thread in this process saves a label every 200 ms through
`storage.save_annotation` (an annotator submitting). Prints the first render, the complete
page, the page's own cost (`--quiet` loads before the writer starts), and p50 / p95 / max of
the later loads, with the server's CPU (user + system from /proc/PID/stat) during each load
and over the whole phase (background refreshes included), the bytes the page sent, and the
load average. `--code DIR` serves another checkout's `annotate` (e.g. `--code /work/main
--code .` for the code before the change, then this one); this bench, the setup and the
writer always run this checkout's code.
Targets (issue 15): dashboard first load < 2 s, later loads < 300 ms; review first < 1 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_release import setup  # noqa: E402
from sqlmodel import col, select  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

from annotate import storage  # noqa: E402
from annotate.accounts.auth import system_actor  # noqa: E402
from annotate.storage import db  # noqa: E402
from annotate.storage.models import Campaign, Item, User  # noqa: E402
from tests.browser.conftest import free_port  # noqa: E402
from tests.stclient import Run, StreamlitClient, sign_in  # noqa: E402

ERROR = 1  # Alert.Format.ERROR: what st.error shows
FULL_RUN = ForwardMsg.FINISHED_SUCCESSFULLY
# What `warm_figures.show_waiting` shows in place of a figure still computing.
WAITING = re.compile(r"^(Computing|Loading) .*started \d+ s ago")
SECRET = "bench-lead-pages-signing-key-" + "p" * 30
PASSWORD = "correct horse"
TICKS = os.sysconf("SC_CLK_TCK")
LABELS = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "right_action": "answer",
    "observed_action": "answer",
    "failure_categories": [],
    "confidence": "high",
}
# What each page must show once loaded (a run that shows an error instead does not count).
EXPECTED = {"dashboard": "Agreement", "review": "Unanimous items"}
TARGETS = {("dashboard", "first"): 2.0, ("dashboard", "later"): 0.3, ("review", "first"): 1.0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its waited-for children so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # exited meanwhile
        return 0.0
    # After the ")": state is field 0, so utime/stime/cutime/cstime are 11..14.
    return sum(int(f) for f in fields[11:15]) / TICKS


def children(pid: int) -> list[int]:
    """The running child processes of `pid`."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """Peak resident memory (MB) of `pid`, and of its running children together."""

    def hwm(p: int) -> float:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    return hwm(pid), sum(hwm(c) for c in children(pid))


@dataclass
class Load:
    """One page load: wall seconds, the server's CPU seconds meanwhile, bytes sent."""

    seconds: float
    cpu: float
    sent: int


@dataclass
class Phase:
    """The loads of one page on one fresh server."""

    page: str
    first: Load | None = None
    complete: Load | None = None  # from the first request until no figure is computing
    polls: int = 0  # the page's own reruns until then (the browser's fragment reruns)
    quiet: list[Load] = field(default_factory=list)
    later: list[Load] = field(default_factory=list)
    phase_cpu: float = 0.0  # the server's CPU over the later loads' whole span
    children_cpu: float = 0.0  # its running children's (the figure process) over that span
    written: int = 0
    load_average: float = 0.0


class Server:
    """`annotate serve` from `code` on a free loopback port."""

    def __init__(self, code: Path, url: str, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATE_")}
        env |= {
            "ANNOTATE_DATABASE_URL": url,
            "ANNOTATE_SECRET_KEY": SECRET,
            "PYTHONPATH": str(code),
            "PYTHONUNBUFFERED": "1",
        }
        self.log = workdir / f"server-{self.port}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from annotate.cli import main; main()"]
            + ["serve", "--port", str(self.port)],
            cwd=workdir,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer within 60 s:\n{self.log.read_text()}")

    def cpu(self) -> float:
        """The server's CPU seconds so far (its own process)."""
        return cpu_seconds(self.process.pid)

    def children_cpu(self) -> float:
        """The CPU seconds so far of the server's running children (the figure process)."""
        return sum(cpu_seconds(c) for c in children(self.process.pid))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; prints the peak memory of the server and of
        its children (the figure process)."""
        if self.process.poll() is None:
            server, kids = peak_rss_mb(self.process.pid)
            print(f"  peak RSS: server {server:.0f} MB, its children {kids:.0f} MB")
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


class Writer:
    """A thread saving one label every `every` seconds, as annotator `user_id`, item by item."""

    def __init__(self, url: str, user_id: int, item_ids: list[int], every: float = 0.2) -> None:
        self.engine = db.make_engine(url)
        self.user_id, self.item_ids, self.every = user_id, item_ids, every
        self.written = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-writer", daemon=True)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            with db.session_scope(self.engine) as s:
                user = s.get(User, self.user_id)
                item = s.get(Item, self.item_ids[self.written % len(self.item_ids)])
                assert user is not None and item is not None
                storage.save_annotation(session=s, user=user, item=item, labels=LABELS)
            self.written += 1
            self.stop_event.wait(self.every)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join()
        self.engine.dispose()


def load(client: StreamlitClient, server: Server, page: str) -> Load:
    """One full run of `page`; AssertionError when it did not show the page."""
    return run_page(client, server, page, ready=True)[0]


def run_page(
    client: StreamlitClient, server: Server, page: str, *, ready: bool
) -> tuple[Load, Run]:
    """One full run of `page` and its messages (`ready` False: placeholders may stand in for
    what the page shows once its figures are computed)."""
    cpu = server.cpu()
    run: Run = client.rerun(page=page)
    used = server.cpu() - cpu
    check(run, page, ready=ready)
    return Load(run.seconds, used, sum(m.ByteSize() for m in run.messages)), run


def check(run: Run, page: str, *, ready: bool) -> None:
    """AssertionError when `run` shows an error, or (`ready`) lacks what the page shows."""
    texts = " ".join(run.texts())
    problems = [e.text[:300] for e in run.exceptions] + [
        e.text[:300] for e in run.elements if e.kind == "alert" and e.proto.format == ERROR
    ]
    shown = EXPECTED[page] in texts or not ready
    assert not problems and shown, f"{page} did not load: {problems or texts}"


def computing(client: StreamlitClient) -> list[str]:
    """The placeholders on the page: figures still computing (`warm_figures.show_waiting`)."""
    return [e.text for e in client.page.values() if WAITING.match(e.text)]


def until_complete(
    client: StreamlitClient, server: Server, page: str, first: Run, started: float, cpu: float
) -> tuple[Load, int]:
    """As the browser does while placeholders are shown: rerun the fragment the page asked
    to be rerun (`auto_rerun`) at its interval, until a run shows no placeholder. The load
    spans from the first request; its CPU is the server's over that span (background
    computations included)."""
    polls, sent = 0, sum(m.ByteSize() for m in first.messages)
    asked = {m.auto_rerun.fragment_id: m.auto_rerun.interval for m in first.of_type("auto_rerun")}
    while computing(client):
        assert asked, f"{page} shows {computing(client)[:1]} but asks for no rerun"
        fragment_id, interval = next(reversed(asked.items()))
        time.sleep(interval)
        run = client.rerun(fragment_id=fragment_id)
        polls += 1
        sent += sum(m.ByteSize() for m in run.messages)
        check(run, page, ready=False)
        if run.status == FULL_RUN:  # the page reran: the fragments it registered now
            asked = {
                m.auto_rerun.fragment_id: m.auto_rerun.interval for m in run.of_type("auto_rerun")
            }
    return Load(time.perf_counter() - started, server.cpu() - cpu, sent), polls


def measure(page: str, args: argparse.Namespace, url: str, people: dict[str, int]) -> Phase:
    """A fresh server; the first load of `page`, then later loads while the writer writes."""
    phase = Phase(page)
    server = Server(args.code, url, args.workdir)
    try:
        cookie = sign_in(server.url, "lena", PASSWORD)
        if args.arrive_after:  # the lead comes later: the server warms at start meanwhile
            time.sleep(args.arrive_after)
        with StreamlitClient(server.url, cookie=cookie, timeout=600) as client:
            started, cpu = time.perf_counter(), server.cpu()
            phase.first, run = run_page(client, server, page, ready=False)
            phase.complete, phase.polls = until_complete(client, server, page, run, started, cpu)
            shown = " ".join(e.text for e in client.page.values())
            assert EXPECTED[page] in shown, f"{page} complete without {EXPECTED[page]!r}"
            for _ in range(args.quiet):  # nothing written meanwhile: the page's own cost
                started = time.perf_counter()
                phase.quiet.append(load(client, server, page))
                time.sleep(max(0.0, args.every - (time.perf_counter() - started)))
            with Writer(url, people["wanda"], args.item_ids) as writer:
                cpu, end = server.cpu(), time.perf_counter() + args.seconds
                kids = server.children_cpu()
                while time.perf_counter() < end:
                    started = time.perf_counter()
                    phase.later.append(load(client, server, page))
                    time.sleep(max(0.0, args.every - (time.perf_counter() - started)))
                phase.phase_cpu = server.cpu() - cpu
                phase.children_cpu = server.children_cpu() - kids
            phase.written = writer.written
        phase.load_average = os.getloadavg()[0]
    except Exception:
        print(
            f"--- {server.log.name}, last lines:\n"
            + "\n".join(server.log.read_text().splitlines()[-40:])
        )
        raise
    finally:
        server.stop()
    return phase


def quantile(values: list[float], q: float) -> float:
    """The `q` quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def report(phase: Phase) -> None:
    """Print one phase's figures and whether they meet the targets."""
    assert phase.first is not None
    first, later = phase.first, phase.later
    walls = [x.seconds for x in later]
    cpus = [x.cpu for x in later]
    target = TARGETS.get((phase.page, "first"))
    print(
        f"{phase.page} first load: {first.seconds:.2f} s wall, {first.cpu:.2f} s server CPU, "
        f"{first.sent / 1e6:.2f} MB sent"
        + (f" (target < {target:g} s: {'met' if first.seconds < target else 'MISSED'})")
    )
    assert phase.complete is not None
    print(
        f"{phase.page} complete (no figure computing): {phase.complete.seconds:.2f} s wall, "
        f"{phase.complete.cpu:.2f} s server CPU (background included), "
        f"{phase.polls} reruns of the page's own"
    )
    if phase.quiet:
        print(
            f"{phase.page} loads with nothing written: {len(phase.quiet)} loads; wall p50 "
            f"{quantile([x.seconds for x in phase.quiet], 0.5) * 1000:.0f} ms, max "
            f"{max(x.seconds for x in phase.quiet) * 1000:.0f} ms; server CPU per load p50 "
            f"{quantile([x.cpu for x in phase.quiet], 0.5) * 1000:.0f} ms"
        )
    target = TARGETS.get((phase.page, "later"))
    print(
        f"{phase.page} later loads: {len(later)} loads while {phase.written} labels were "
        f"written; wall p50 {quantile(walls, 0.5) * 1000:.0f} ms, p95 "
        f"{quantile(walls, 0.95) * 1000:.0f} ms, max {max(walls) * 1000:.0f} ms; server CPU "
        f"per load p50 {quantile(cpus, 0.5) * 1000:.0f} ms, max {max(cpus) * 1000:.0f} ms; "
        f"server CPU over the phase {phase.phase_cpu:.1f} s "
        f"({phase.phase_cpu / len(later) * 1000:.0f} ms per load, background refreshes "
        f"included), its figure process {phase.children_cpu:.1f} s; "
        f"{quantile([x.sent for x in later], 0.5) / 1e6:.2f} MB sent per load"
        + (
            f" (target p95 < {target * 1000:.0f} ms: "
            f"{'met' if quantile(walls, 0.95) < target else 'MISSED'})"
            if target
            else ""
        )
        + f"; load average {phase.load_average:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=1.5, help="Seconds between later loads.")
    parser.add_argument(
        "--code",
        type=Path,
        action="append",
        help="A checkout for `serve` to run (repeat to compare several on the same database; "
        "default: this one).",
    )
    parser.add_argument("--pages", default="dashboard,review")
    parser.add_argument(
        "--arrive-after",
        type=float,
        default=0.0,
        help="Seconds between the server answering and the lead's first load (the server may "
        "compute figures meanwhile).",
    )
    parser.add_argument(
        "--db",
        type=Path,
        help="Keep the built database here and reuse it on later runs (built if missing).",
    )
    parser.add_argument(
        "--quiet", type=int, default=5, help="Loads before the writer starts (nothing written)."
    )
    args = parser.parse_args()
    codes = [c.resolve() for c in args.code or [ROOT]]
    with tempfile.TemporaryDirectory(prefix="bench-lead-pages-") as tmp:
        args.workdir = Path(tmp)
        built = args.db or Path(tmp) / "built.db"
        started = time.perf_counter()
        people, args.item_ids = prepare(built, args.items)
        print(
            f"setup: {args.items:,} items x 3 labels in {time.perf_counter() - started:.0f} s "
            f"({built}); load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs"
        )
        for n, code in enumerate(codes):
            args.code = code
            print(f"code served: {code}")
            for page in args.pages.split(","):
                # Each server gets its own copy: no run profits from a snapshot or labels
                # another one left behind. A new name each time: a stopped server may leave
                # its write-ahead log beside the file, which SQLite would apply to a new copy.
                copy = Path(tmp) / f"pages-{n}-{page}.db"
                shutil.copyfile(built, copy)
                try:
                    report(measure(page, args, f"sqlite:///{copy}", people))
                finally:
                    for leftover in (copy, *copy.parent.glob(copy.name + "-*")):
                        leftover.unlink(missing_ok=True)


def prepare(path: Path, n_items: int) -> tuple[dict[str, int], list[int]]:
    """The campaign's database at `path`, built unless it is there already (from an earlier
    run with the same `--db`); the lead's and the writer's user ids, and the item ids."""
    url = f"sqlite:///{path}"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        setup(f"sqlite:///{partial}", n_items)
        engine = db.make_engine(f"sqlite:///{partial}")
        actor = system_actor()
        with db.session_scope(engine) as s:
            storage.add_user(session=s, actor=actor, name="lena", role="lead", password=PASSWORD)
            storage.add_user(session=s, actor=actor, name="wanda")
        engine.dispose()
        partial.rename(path)
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        campaign = s.exec(select(Campaign)).one()
        people = {
            u.name: u.id or 0
            for u in s.exec(select(User).where(col(User.name).in_(["lena", "wanda"])))
        }
        items = list(s.exec(select(Item.id).where(Item.campaign_id == campaign.id)).all())
    engine.dispose()
    if len(items) != n_items:
        raise SystemExit(f"{path} holds {len(items):,} items, not --items {n_items:,}")
    return people, [int(i) for i in items if i is not None]


if __name__ == "__main__":
    main()
