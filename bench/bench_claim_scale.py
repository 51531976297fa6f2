"""Claim cost against campaign size: 10,000 / 100,000 / 1,000,000 items, SQLite or PostgreSQL.

Seeds one campaign per size (items bulk-inserted, overlap `--overlap`, 1 makes every claim a
fresh one), then in each of `--rounds` rounds, size after size, `--annotators` annotators take
turns to claim and submit until `--labels` more labels are in, one claim at a time; alternating
the sizes lets a change of load on a shared machine hit them alike. Prints per size and round,
then per size over all rounds: the first claim of each annotator (it builds their cached order)
and the median, p95 and mean of the later claims, wall and CPU milliseconds, with the load
average. On PostgreSQL the client's CPU leaves the server's out: when the server runs on this
machine, the CPU of the database's backends (`/proc/PID/schedstat`, which needs the right to
read them) is shown per claim as "server cpu", and the sum as "cpu+server". The code measured
is the one importable first: set BENCH_CODE=/path/to/checkout to time another version (the
"before").

    python bench/bench_claim_scale.py [--sizes 10000,100000,1000000] [--labels 60] [--rounds 1]
        [--pg URL]  # a PostgreSQL database of its own: one schema per size, scale_SIZE, replaced
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("BENCH_CODE") or str(ROOT))

from sqlalchemy import event, insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from annotate import labeling, storage  # noqa: E402
from annotate.accounts.auth import system_actor  # noqa: E402
from annotate.schema import load_schema  # noqa: E402
from annotate.storage import db  # noqa: E402
from annotate.storage.models import Item, utcnow  # noqa: E402

LABELS = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "right_action": "answer",
    "observed_action": "answer",
    "failure_categories": [],
    "confidence": "high",
}


def seed(url: str, items: int, annotators: int, overlap: int) -> None:
    engine = db.make_engine(url)
    db.migrate(engine)
    actor = system_actor()
    with db.session_scope(engine) as s:
        campaign = storage.create_campaign(
            session=s,
            actor=actor,
            name="scale",
            schema=load_schema(ROOT / "schemas" / "refusal-v1.yaml"),
            overlap=overlap,
            seed=4,
        )
        for n in range(annotators):
            storage.add_user(session=s, actor=actor, name=f"w{n:02d}")
        cid = campaign.id
    now = utcnow()
    with engine.begin() as conn:
        for lo in range(0, items, 50_000):
            conn.execute(
                insert(Item.__table__),  # type: ignore[arg-type]
                [
                    {
                        "campaign_id": cid,
                        "external_id": f"s-{i:07d}",
                        "prompt": f"p{i}",
                        "response": f"r{i}",
                        "meta": {},
                        "content_hash": hashlib.sha256(str(i).encode()).hexdigest(),
                        "created_at": now,
                    }
                    for i in range(lo, min(items, lo + 50_000))
                ],
            )
    engine.dispose()


_PIDS: weakref.WeakKeyDictionary[Engine, set[int]] = weakref.WeakKeyDictionary()


def track_backends(engine: Engine) -> Engine:
    """Record the backend process id of every connection `engine` opens from now on."""
    if engine.dialect.name == "postgresql":
        pids = _PIDS.setdefault(engine, set())

        @event.listens_for(engine, "connect")
        def _opened(dbapi_conn: Any, _record: Any) -> None:
            pids.add(dbapi_conn.info.backend_pid)

    return engine


def backend_cpu_ms(engine: Engine) -> float | None:
    """CPU so far of the PostgreSQL backends of `engine`'s own connections (ms; see
    `track_backends`), or None if /proc cannot tell. Only its own: other clients of the same
    database (a parallel test run) start and end backends, whose CPU would come and go."""
    pids = _PIDS.get(engine)
    if engine.dialect.name != "postgresql" or not pids:
        return None
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    return total / 1e6


class Claims:
    """One campaign of one size: its engine, annotators and the claims timed so far."""

    def __init__(self, url: str, annotators: int) -> None:
        self.engine = track_backends(db.make_engine(url))
        with db.session_scope(self.engine) as s:
            self.campaign = storage.get_campaign(session=s, name="scale")
            self.users = [storage.get_user(session=s, name=f"w{n:02d}") for n in range(annotators)]
        self.done = 0
        self.first: list[tuple[float, float]] = []
        self.later: list[tuple[float, float, float | None]] = []

    def claim_and_submit(self, labels: int) -> None:
        """`labels` claims, each followed by its submit; the first of each annotator apart."""
        for _ in range(labels):
            user = self.users[self.done % len(self.users)]
            s0 = backend_cpu_ms(self.engine)
            w0, c0 = time.perf_counter(), time.process_time()
            with labeling.write_session(self.engine) as s:
                claim = labeling.claim_next(session=s, user=user, campaign=self.campaign)
            w1, c1 = time.perf_counter(), time.process_time()
            s1 = backend_cpu_ms(self.engine)
            wall, cpu = (w1 - w0) * 1000, (c1 - c0) * 1000
            if self.done < len(self.users):
                self.first.append((wall, cpu))
            else:
                self.later.append((wall, cpu, None if s0 is None or s1 is None else s1 - s0))
            self.done += 1
            assert claim is not None
            with labeling.write_session(self.engine) as s:
                labeling.submit(
                    session=s, user=user, assignment_id=claim.assignment.id or 0, labels=LABELS
                )

    def figures(self, since: int = 0) -> str:
        """The later claims from the `since`-th on: p50 / p95 / mean of wall, CPU, server CPU."""
        later = self.later[since:]

        def stats(values: list[float]) -> str:
            values = sorted(values)
            p95 = values[int(0.95 * (len(values) - 1))]
            return f"{statistics.median(values):6.1f} / {p95:6.1f} / {statistics.mean(values):6.1f}"

        line = f"wall {stats([w for w, _, _ in later])}  cpu {stats([c for _, c, _ in later])}"
        if all(x is not None for _, _, x in later):
            line += f"  server cpu {stats([x or 0.0 for _, _, x in later])}"
            line += f"  cpu+server {stats([c + (x or 0.0) for _, c, x in later])}"
        return line + " ms (p50 / p95 / mean)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--labels", type=int, default=60, help="claims per size and round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over the sizes, in turn")
    parser.add_argument("--overlap", type=int, default=3, help="k; 1 makes every claim fresh")
    parser.add_argument("--pg", default="")
    args = parser.parse_args()
    print(
        f"code: {sys.path[0]}  backend: {'postgresql' if args.pg else 'sqlite'}  k={args.overlap}"
        f"  load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    sizes = [int(x) for x in args.sizes.split(",")]
    runs: dict[int, Claims] = {}
    for size in sizes:
        if args.pg:
            admin = db.make_engine(args.pg)
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS scale_{size} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA scale_{size}"))
            admin.dispose()
            sep = "&" if "?" in args.pg else "?"
            url = f"{args.pg}{sep}options=-csearch_path%3Dscale_{size}"
        else:
            url = f"sqlite:///{tempfile.mkdtemp(prefix='claimscale-')}/a.db"
        t = time.perf_counter()
        seed(url, size, args.annotators, args.overlap)
        print(f"{size:>9,} items seeded in {time.perf_counter() - t:.0f} s", flush=True)
        runs[size] = Claims(url, args.annotators)
    for round_ in range(args.rounds):
        for size in sizes:
            since = len(runs[size].later)
            runs[size].claim_and_submit(args.labels)
            print(
                f"round {round_ + 1} {size:>9,} items: {runs[size].figures(since)};"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    for size in sizes:
        r = runs[size]
        first_wall = statistics.mean(w for w, _ in r.first)
        first_cpu = statistics.mean(c for _, c in r.first)
        print(
            f"{size:>9,} items, all rounds: first claim {first_wall:7.1f} ms wall"
            f" {first_cpu:7.1f} ms cpu; later claims {r.figures()}",
            flush=True,
        )
        r.engine.dispose()


if __name__ == "__main__":
    main()
