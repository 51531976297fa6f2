"""Many annotators at once over Streamlit's websocket, without a browser: labels per second,
submit -> next item latency, and the server's CPU time per label; then the database is checked.

N annotators (default 16) each sign in over HTTP (`POST /signin`), open the Label page over
the websocket with Streamlit's protobuf messages (tests/stclient.py), and label M items
(default 50) the way the browser form does: one `message` trigger per item carrying a
complete, consistent label set for the campaign's schema (the default schema), answered by
a fragment rerun that shows the next item. The clock of a submit runs from sending the
trigger to the end of that rerun (its next item is then on the client's page).

Annotators are threads spread over `--client-processes` processes, so that the client is not
what limits the rate; the client's CPU time is reported beside the server's. The timed window
starts once every annotator has signed in and seen a first item, and ends when the last one is
done. By default annotators submit back to back; `--think S` has each pause S seconds on
average before a submit (outside the submit's clock), to see how many annotators working at a
human pace one process serves. Server CPU is user + system time from /proc of each
`annotate serve` process (and any children) over that window, divided by the labels
acknowledged in it (PostgreSQL's own backends are not counted).

Afterwards the database must show: every acknowledged label stored as it was sent (and
nothing else stored by the bench's annotators), no item with more than k human labels (and
every item's label counter equal to its labels), nobody shown an item twice.

Configurations: SQLite with one server process; PostgreSQL (a fresh schema per run, dropped
afterwards) with one and with two processes, annotators split between them (several processes
on one SQLite file are not supported: README, "What SQLite supports"). Setup (a campaign of
`--items` items, default 100,000, overlap 3) is not timed.

    python bench/bench_protocol_load.py [--annotators 16] [--items-each 50] [--items 100000]
        [--overlap 3] [--client-processes 2] [--think 0] [--only sqlite1,pg1,pg2]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from annotate import labeling, storage  # noqa: E402
from annotate.accounts.auth import hash_password, system_actor  # noqa: E402
from annotate.intake.items import ItemRecord  # noqa: E402
from annotate.schema import LabelSchema, resolve_schema  # noqa: E402
from annotate.settings import get_settings  # noqa: E402
from annotate.storage import db  # noqa: E402
from bench.protocol_check import AnnotatorRun, check  # noqa: E402
from tests.stclient import try_sign_in  # noqa: E402

SECRET = "bench-protocol-signing-key-" + "p" * 30
PASSWORD = "bench password"
CAMPAIGN = "proto"
# Complete, consistent label sets for refusal-v2 (the default schema), each taking another path
# through its conditional fields; checked against the campaign's schema before a run.
LABEL_SETS: tuple[dict[str, Any], ...] = (
    {"intent": "benign", "epistemic_status": "answerable", "harm_area": "none",
     "severity": "none", "right_action": "answer", "observed_action": "answer",
     "answer_quality": "useful", "failure_categories": [], "confidence": "high"},
    {"intent": "harmful", "epistemic_status": "answerable", "harm_area": "cbrn",
     "severity": "critical", "right_action": "refuse", "noncompliance_reason": "safety",
     "observed_action": "refuse", "refusal_style": "explains_and_redirects",
     "failure_categories": [], "confidence": "medium"},
    {"intent": "benign", "epistemic_status": "false_premise", "harm_area": "none",
     "severity": "none", "right_action": "correct_premise", "noncompliance_reason": "incomplete",
     "observed_action": "answer_with_caveat", "answer_quality": "not_useful",
     "failure_categories": ["false_premise_accepted", "over_abstention"], "confidence": "low"},
)  # fmt: skip


# -- setup (not timed) -------------------------------------------------------------------------


def check_label_sets(schema: LabelSchema) -> None:
    """Fail before a run when a label set would be refused by `schema` (a changed default)."""
    for labels in LABEL_SETS:
        _, warnings = labeling.review_labels(schema, labels)
        if warnings:
            raise SystemExit(f"label set breaks rules of {schema.id}: {warnings}")


def setup(url: str, *, items: int, annotators: int, overlap: int) -> list[str]:
    """A migrated database with campaign `proto` of `items` items on the default schema and
    annotators ann00.. (password PASSWORD); their names."""
    engine = db.make_engine(url)
    db.migrate(engine)
    schema = resolve_schema(None, get_settings().schemas_dir)
    check_label_sets(schema)
    actor = system_actor()
    names = [f"ann{n:02d}" for n in range(annotators)]
    pw = hash_password(PASSWORD)
    with db.session_scope(engine) as s:
        campaign = storage.create_campaign(
            session=s, actor=actor, name=CAMPAIGN, schema=schema, overlap=overlap, seed=7
        )
        records = [
            ItemRecord(
                external_id=f"p-{i:06d}",
                prompt=f"Question {i}: how would I stop a runaway process number {i}?",
                response=f"Answer {i}: find it with `ps`, then `kill {i}`.",
                model=f"model-{i % 3}",
            )
            for i in range(items)
        ]
        storage.import_items(session=s, actor=actor, campaign=campaign, records=records)
        for name in names:
            storage.add_user(session=s, actor=actor, name=name).password_hash = pw
    engine.dispose()
    return names


# -- the client --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """What each annotator does: label `items` items, thinking `think_s` seconds before each
    submit on average (0: back to back, the most load a connection can make)."""

    items: int
    think_s: float = 0.0


BUSY = "Too many sign-ins at once"


def sign_in(run: AnnotatorRun) -> str:
    """The session cookie of `run`'s annotator. Sign-ins wait in line for the password hash,
    and one address gets only so many at once: one told to wait (429, or too many at once)
    tries again when told, at least a second later (counted in the run)."""
    for _ in range(60):
        reply = try_sign_in(run.base_url, run.name, PASSWORD, timeout=120)
        if reply.cookie is not None:
            return reply.cookie
        if reply.status != 429 and BUSY not in reply.page:
            break
        run.sign_in_retries += 1
        time.sleep(max(1.0, reply.retry_after))
    raise RuntimeError(f"sign-in as {run.name}: HTTP {reply.status}")


def annotate_items(run: AnnotatorRun, task: Task, ready: Any, go: Any) -> None:
    """Sign in, open the Label page, say `ready`, wait for `go`, then label `task.items` items,
    pausing `task.think_s` on average (0.5x to 1.5x, at random) before each submit."""
    from tests.stclient import StreamlitClient

    try:
        client = StreamlitClient(run.base_url, cookie=sign_in(run))
        client.timeout = 300.0
        with client:
            client.rerun(page="label")
            form = client.component_data(key="labelform")
            ready.put(run.name)
            go.wait()
            pause = random.Random(run.name)
            for n in range(task.items):
                item = form["item"]
                run.shown.append((int(item["assignment"]), str(item["name"])))
                labels = LABEL_SETS[n % len(LABEL_SETS)]
                if task.think_s:
                    time.sleep(task.think_s * pause.uniform(0.5, 1.5))
                message = {
                    "kind": "submit",
                    "assignment": item["assignment"],
                    "labels": labels,
                    "duration_s": 1.0,
                }
                answer = client.trigger(key="labelform", event="message", value=message)
                if answer.exceptions:
                    raise RuntimeError(f"the page raised: {answer.exceptions[0].text[:300]}")
                form = client.component_data(key="labelform")
                if form["feedback"]["text"]:
                    raise RuntimeError(f"submit refused: {form['feedback']['text'][:300]}")
                if form["item"]["assignment"] == item["assignment"]:
                    raise RuntimeError("the same item came back after a submit")
                run.sent[int(item["assignment"])] = labels
                run.latencies.append(answer.seconds)
            run.shown.append((int(form["item"]["assignment"]), str(form["item"]["name"])))
    except Exception as exc:  # reported per annotator; the run fails on any
        run.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        ready.put(run.name)  # not left waiting for


def client_process(
    jobs: list[tuple[str, str]], task: Task, ready: Any, go: Any, results: Any
) -> None:
    """One client process: an annotator thread per job; puts its runs and CPU time."""
    runs = [AnnotatorRun(name=name, base_url=url) for name, url in jobs]
    threads = [
        threading.Thread(target=annotate_items, args=(r, task, ready, go), daemon=True)
        for r in runs
    ]
    for thread in threads:
        thread.start()
    go.wait()
    cpu = time.process_time()
    for thread in threads:
        thread.join()
    results.put(([asdict(r) for r in runs], time.process_time() - cpu))


# -- server CPU --------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of `pid` from /proc, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of processes `pids` and all their descendants."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parents[int(entry)], cpu[int(entry)] = stat
    total, todo = 0.0, list(pids)
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- one configuration -------------------------------------------------------------------------


@dataclass
class Result:
    """One configuration's figures."""

    label: str
    annotators: int
    labels: int
    seconds: float
    server_cpu_s: float
    client_cpu_s: float
    p50_ms: float
    p95_ms: float
    load_before: str
    load_after: str
    problems: list[str]
    sign_in_retries: int = 0

    def summary(self) -> str:
        """One line with every figure."""
        rate = self.labels / self.seconds if self.seconds else 0.0
        per = self.server_cpu_s * 1000 / self.labels if self.labels else float("nan")
        return (
            f"{self.label}: {self.annotators} annotators, {self.labels} labels in "
            f"{self.seconds:.1f} s = {rate:.1f} labels/s; submit -> next item p50 "
            f"{self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms; server CPU {per:.1f} ms/label "
            f"({self.server_cpu_s:.1f} s, {self.server_cpu_s / self.seconds:.2f} cores); "
            f"client CPU {self.client_cpu_s:.1f} s ({self.client_cpu_s / self.seconds:.2f} cores);"
            f" load {self.load_before} -> {self.load_after}; sign-ins told to retry: "
            f"{self.sign_in_retries}; "
            + ("checks passed" if not self.problems else f"{len(self.problems)} PROBLEMS")
        )


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Window:
    """The timed window: wall seconds, the client's and the servers' CPU seconds in it, and
    the load average at its start and end."""

    seconds: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    load_before: str = ""
    load_after: str = ""


def drive(
    urls: list[str], names: list[str], task: Task, client_processes: int, pids: list[int]
) -> tuple[list[AnnotatorRun], Window]:
    """Run the annotators against `urls` (round robin), served by processes `pids`: their runs
    and the timed window (from all signed in and shown a first item, to the last one done)."""
    ctx = mp.get_context("fork")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    jobs = [(n, urls[i % len(urls)]) for i, n in enumerate(names)]
    groups = [jobs[p::client_processes] for p in range(client_processes)]
    procs = [
        ctx.Process(target=client_process, args=(g, task, ready, go, results)) for g in groups if g
    ]
    for proc in procs:
        proc.start()
    for _ in names:
        ready.get(timeout=600)
    window = Window(load_before=loadavg())
    server_cpu = tree_cpu(pids)
    start = time.perf_counter()
    go.set()
    collected = [results.get(timeout=7200) for _ in procs]
    window.seconds = time.perf_counter() - start
    window.server_cpu_s = tree_cpu(pids) - server_cpu
    window.load_after = loadavg()
    window.client_cpu_s = sum(c[1] for c in collected)
    for proc in procs:
        proc.join()
    return [AnnotatorRun(**r) for c in collected for r in c[0]], window


def run_config(label: str, url: str, processes: int, args: argparse.Namespace) -> Result:
    """Set up, serve with `processes` servers, drive, check; the figures."""
    from tests.browser.conftest import Server, free_port, start_server

    t0 = time.perf_counter()
    names = setup(url, items=args.items, annotators=args.annotators, overlap=args.overlap)
    print(f"{label}: setup of {args.items:,} items in {time.perf_counter() - t0:.0f} s")
    servers: list[Server] = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            for _ in range(processes):
                port = free_port()
                servers.append(
                    start_server(
                        ["serve", "--port", str(port)],
                        url,
                        Path(workdir),
                        port,
                        env={"ANNOTATE_SECRET_KEY": SECRET},
                    )
                )
            runs, window = drive(
                [s.url for s in servers],
                names,
                Task(items=args.items_each, think_s=args.think),
                args.client_processes,
                [s.process.pid for s in servers],
            )
        finally:
            for server in servers:
                server.stop()
    problems = check(url, runs, items=args.items_each, overlap=args.overlap)
    latencies = [x for r in runs for x in r.latencies]
    return Result(
        label=label,
        annotators=len(names),
        labels=sum(len(r.sent) for r in runs),
        seconds=window.seconds,
        server_cpu_s=window.server_cpu_s,
        client_cpu_s=window.client_cpu_s,
        p50_ms=statistics.median(latencies) * 1000 if latencies else float("nan"),
        p95_ms=percentile(latencies, 0.95) * 1000,
        load_before=window.load_before,
        load_after=window.load_after,
        problems=problems,
        sign_in_retries=sum(r.sign_in_retries for r in runs),
    )


# -- main --------------------------------------------------------------------------------------


def fresh_schema_url(base: str) -> tuple[str, Any]:
    """A URL on a new PostgreSQL schema of `base`, and a function that drops the schema."""
    schema = "bench_proto_" + uuid.uuid4().hex[:8]
    admin = db.make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


# Configuration name -> (backend, server processes).
CONFIGS = {"sqlite1": ("SQLite", 1), "pg1": ("PostgreSQL", 1), "pg2": ("PostgreSQL", 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--annotators", type=int, default=16)
    parser.add_argument("--items-each", type=int, default=50)
    parser.add_argument("--items", type=int, default=100_000, help="Items in the campaign.")
    parser.add_argument("--overlap", type=int, default=3, help="k: human labels per item.")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--think", type=float, default=0.0, help="Mean seconds before each submit (0: none)."
    )
    parser.add_argument(
        "--only",
        default="sqlite1,pg1,pg2",
        help=f"Configurations to run, comma-separated, of {', '.join(CONFIGS)}.",
    )
    parser.add_argument("--postgres-url", default=os.environ.get("ANNOTATE_TEST_POSTGRES_URL", ""))
    parser.add_argument("--json", type=Path, help="Also write the figures to this file.")
    args = parser.parse_args()

    results = []
    for key in args.only.split(","):
        backend, processes = CONFIGS[key]
        label = f"{backend}, {processes} process{'es' if processes > 1 else ''}"
        if backend == "SQLite":
            with tempfile.TemporaryDirectory() as tmp:
                results.append(run_config(label, f"sqlite:///{tmp}/proto.db", processes, args))
        elif not args.postgres_url:
            print(f"{key}: skipped, no --postgres-url")
            continue
        else:
            url, drop = fresh_schema_url(args.postgres_url)
            try:
                results.append(run_config(label, url, processes, args))
            finally:
                drop()
        print(results[-1].summary(), flush=True)
    for result in results:
        for problem in result.problems[:20]:
            print(f"  {result.label}: {problem}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    if any(r.problems for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
