"""Claim + label throughput with 32 concurrent threads, on SQLite and PostgreSQL.

Each thread is an annotator of its own that claims the next item and submits labels through
the core functions (`labeling.claim_next`, `labeling.submit`, each in `labeling.write_session`), as
the labeling page does, until `--labels` labels are in. Prints labels per second and the latency of
a claim and of a submit (p50, p95) per backend.

    python bench/bench_claim_throughput.py [--items 20000] [--threads 32] [--labels 3000]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]  # $ANNOTATE_TEST_POSTGRES_URL
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from annotate import labeling, storage  # noqa: E402
from annotate.accounts.auth import system_actor  # noqa: E402
from annotate.intake.items import ItemRecord  # noqa: E402
from annotate.schema import load_schema  # noqa: E402
from annotate.storage import db  # noqa: E402
from annotate.storage.models import User  # noqa: E402

LABELS = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "right_action": "answer",
    "observed_action": "answer",
    "failure_categories": [],
    "confidence": "high",
}


def seed(url: str, items: int, annotators: int, overlap: int) -> tuple[list[User], int]:
    engine = db.make_engine(url)
    db.migrate(engine)
    actor = system_actor()
    with db.session_scope(engine) as s:
        campaign = storage.create_campaign(
            session=s,
            actor=actor,
            name="throughput",
            schema=load_schema(ROOT / "schemas" / "refusal-v1.yaml"),
            overlap=overlap,
            seed=4,
        )
        storage.import_items(
            session=s,
            actor=actor,
            campaign=campaign,
            records=[
                ItemRecord(external_id=f"t-{i:06d}", prompt=f"p{i}", response=f"r{i}")
                for i in range(items)
            ],
        )
        users = [
            storage.add_user(session=s, actor=actor, name=f"w{n:02d}") for n in range(annotators)
        ]
    engine.dispose()
    return users, campaign.id or 0


def run(url: str, *, items: int, threads: int, labels: int, overlap: int) -> None:
    users, campaign_id = seed(url, items, threads, overlap)
    engine = db.make_engine(url, pool_size=threads)
    with db.session_scope(engine) as s:
        campaign = storage.get_campaign(session=s, name="throughput")
    done = 0
    lock = threading.Lock()
    claims: list[float] = []
    submits: list[float] = []
    failures: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def work(user: User) -> None:
        nonlocal done
        start.wait()
        while True:
            with lock:
                if done >= labels:
                    return
            try:
                t0 = time.perf_counter()
                with labeling.write_session(engine) as s:
                    claim = labeling.claim_next(session=s, user=user, campaign=campaign)
                t1 = time.perf_counter()
                if claim is None:
                    return
                with labeling.write_session(engine) as s:
                    labeling.submit(
                        session=s,
                        user=user,
                        assignment_id=claim.assignment.id or 0,
                        labels=LABELS,
                        duration_s=1.0,
                    )
                t2 = time.perf_counter()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return
            with lock:
                done += 1
                claims.append(t1 - t0)
                submits.append(t2 - t1)

    workers = [threading.Thread(target=work, args=(u,)) for u in users]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    engine.dispose()
    if failures:
        raise SystemExit(f"{len(failures)} thread(s) failed, first: {failures[0]!r}")
    backend = url.split(":", 1)[0]
    print(
        f"{backend}: {done} claim+label in {elapsed:.1f} s with {threads} threads = "
        f"{done / elapsed:.0f} labels/s; claim p50 {pct(claims, 0.5):.1f} ms, "
        f"p95 {pct(claims, 0.95):.1f} ms; submit p50 {pct(submits, 0.5):.1f} ms, "
        f"p95 {pct(submits, 0.95):.1f} ms"
    )


def pct(values: list[float], q: float) -> float:
    if q == 0.5:
        return statistics.median(values) * 1000
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * len(ordered)) - 1)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--labels", type=int, default=3_000)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--pg", default=os.environ.get("ANNOTATE_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    kw = {
        "items": args.items,
        "threads": args.threads,
        "labels": args.labels,
        "overlap": args.overlap,
    }
    print(f"{args.items:,} items, k={args.overlap}, {args.threads} threads, {args.labels:,} labels")
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/throughput.db", **kw)
    if not args.pg:
        print("postgresql: skipped (give --pg URL or set ANNOTATE_TEST_POSTGRES_URL)")
        return
    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = db.make_engine(args.pg)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in args.pg else "?"
        run(f"{args.pg}{sep}options=-csearch_path%3D{schema}", **kw)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
