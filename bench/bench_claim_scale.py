"""Claim cost against campaign size: 10,000 / 100,000 / 1,000,000 items, SQLite or PostgreSQL.

Seeds one campaign per size (items bulk-inserted, overlap `--overlap`, 1 makes every claim a
fresh one), then `--annotators` annotators take turns to claim and submit until `--labels`
labels are in, one claim at a time, and prints per size: the first claim of each annotator (it
builds their cached order) and the median, p95 and mean of the later claims, wall and CPU
milliseconds, with the load average. The code measured is the
one importable first: set BENCH_CODE=/path/to/checkout to time another version (the "before").

    python bench/bench_claim_scale.py [--sizes 10000,100000,1000000] [--labels 60]
        [--pg URL]  # a PostgreSQL database of its own: the bench wipes its public schema
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("BENCH_CODE") or str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

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


def run(url: str, items: int, annotators: int, labels: int, overlap: int) -> dict[str, float]:
    t = time.perf_counter()
    seed(url, items, annotators, overlap)
    seeded = time.perf_counter() - t
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        campaign = storage.get_campaign(session=s, name="scale")
        users = [storage.get_user(session=s, name=f"w{n:02d}") for n in range(annotators)]
    first: list[tuple[float, float]] = []
    later: list[tuple[float, float]] = []
    for n in range(labels):
        user = users[n % annotators]
        w0, c0 = time.perf_counter(), time.process_time()
        with labeling.write_session(engine) as s:
            claim = labeling.claim_next(session=s, user=user, campaign=campaign)
        w1, c1 = time.perf_counter(), time.process_time()
        (first if n < annotators else later).append(((w1 - w0) * 1000, (c1 - c0) * 1000))
        assert claim is not None
        with labeling.write_session(engine) as s:
            labeling.submit(
                session=s, user=user, assignment_id=claim.assignment.id or 0, labels=LABELS
            )
    engine.dispose()
    walls = sorted(w for w, _ in later)
    return {
        "seed_s": seeded,
        "first_wall_ms": statistics.mean(w for w, _ in first),
        "first_cpu_ms": statistics.mean(c for _, c in first),
        "p50_wall_ms": statistics.median(walls),
        "p95_wall_ms": walls[int(0.95 * (len(walls) - 1))],
        "p50_cpu_ms": statistics.median(c for _, c in later),
        "p95_cpu_ms": sorted(c for _, c in later)[int(0.95 * (len(later) - 1))],
        "mean_cpu_ms": statistics.mean(c for _, c in later),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--labels", type=int, default=60)
    parser.add_argument("--overlap", type=int, default=3, help="k; 1 makes every claim fresh")
    parser.add_argument("--pg", default="")
    args = parser.parse_args()
    print(
        f"code: {sys.path[0]}  backend: {'postgresql' if args.pg else 'sqlite'}  k={args.overlap}"
    )
    for size in (int(x) for x in args.sizes.split(",")):
        if args.pg:
            engine = db.make_engine(args.pg)
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
            url = args.pg
        else:
            url = f"sqlite:///{tempfile.mkdtemp(prefix='claimscale-')}/a.db"
        r = run(url, size, args.annotators, args.labels, args.overlap)
        print(
            f"{size:>9,} items: first claim {r['first_wall_ms']:7.1f} ms wall"
            f" {r['first_cpu_ms']:7.1f} ms cpu; later claims p50 {r['p50_wall_ms']:6.1f} ms wall"
            f" (p95 {r['p95_wall_ms']:6.1f}) cpu p50 {r['p50_cpu_ms']:6.1f} p95"
            f" {r['p95_cpu_ms']:6.1f} mean {r['mean_cpu_ms']:6.1f} ms;"
            f" seeded in {r['seed_s']:.0f} s; load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
