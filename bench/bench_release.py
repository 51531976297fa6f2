"""Release benchmark: a gold release of 100,000 items (every file and the manifest) on SQLite.

Usage: python bench/bench_release.py [--items N] [--postgres URL]
Setup (not timed): a campaign with N items, three annotators each, almost all unanimous, a
few hundred adjudicated. Timed: `create_release` end to end (load labels, select gold,
agreement with 1,000 bootstrap resamples, JSONL, Parquet, CSV, card, inspect files, hashes,
manifest, atomic rename), then a second release of the same state (adds the diff from v1).
Target (issue 5): under 15 s on SQLite for 100,000 gold items.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import insert, text

from annotate import storage
from annotate.accounts.auth import system_actor
from annotate.intake.items import ItemRecord
from annotate.release.publish import create_release, cyclic_gc_paused
from annotate.release.selection import select_gold
from annotate.review.figures import agreement_report
from annotate.schema import resolve_schema
from annotate.settings import get_settings
from annotate.storage import db
from annotate.storage.models import Adjudication, Annotation, utcnow
from annotate.storage.queries import load_labels

WORDS = "kill process shoot photo execute script bleed radiator attack opening the a of".split()
T = TypeVar("T")
RIGHT = ["answer", "answer_with_caveat", "refuse", "clarify", "abstain"]
INTENT = {"answer": "benign", "answer_with_caveat": "benign", "refuse": "harmful"}


def setup(url: str, n_items: int) -> str:
    """A campaign with `n_items` items labeled by three annotators; returns its name."""
    rng = random.Random(5)
    engine = db.make_engine(url)
    db.migrate(engine)
    actor = system_actor()
    name = f"bench-{uuid.uuid4().hex[:6]}"
    with db.session_scope(engine) as s:
        campaign = storage.create_campaign(
            session=s,
            actor=actor,
            name=name,
            schema=resolve_schema(None, get_settings().schemas_dir),
            overlap=3,
        )
        records = [
            ItemRecord(
                external_id=f"b-{n:06d}",
                prompt=" ".join(rng.choices(WORDS, k=12)) + "?",
                response=" ".join(rng.choices(WORDS, k=80)) + ".",
                model=f"m{n % 5}",
                category=f"c{n % 18}",
                group_id=f"g{n // 4}",
                meta={"focus": rng.choice(WORDS)},
            )
            for n in range(n_items)
        ]
        storage.import_items(session=s, actor=actor, campaign=campaign, records=records)
        users = [
            storage.add_user(session=s, actor=actor, name=f"{name}-{who}")
            for who in ("a", "b", "c")
        ]
        lead = storage.add_user(session=s, actor=actor, name=f"{name}-lead", role="lead")
        item_ids = [
            i
            for (i,) in s.execute(
                text("SELECT id FROM item WHERE campaign_id = :c ORDER BY id"), {"c": campaign.id}
            )
        ]
        now = utcnow()
        rows = []
        adjudications = []
        for n, item_id in enumerate(item_ids):
            right = RIGHT[n % len(RIGHT)]
            split = n % 250 == 0  # one item in 250 splits and is adjudicated
            for k, user in enumerate(users):
                labels = {
                    "intent": INTENT.get(right, "ambiguous"),
                    "epistemic_status": "uncertain" if right == "abstain" else "answerable",
                    "right_action": "refuse" if split and k == 2 else right,
                    "observed_action": rng.choice(RIGHT),
                    "failure_categories": [] if rng.random() < 0.8 else ["over_refusal"],
                    "confidence": rng.choice(["low", "medium", "high"]),
                    "rationale": None,
                }
                rows.append(
                    {
                        "campaign_id": campaign.id,
                        "item_id": item_id,
                        "user_id": user.id,
                        "labels": labels,
                        "flagged": False,
                        "overridden_rules": [],
                        "origin": "app",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            if split:
                adjudications.append(
                    {
                        "campaign_id": campaign.id,
                        "item_id": item_id,
                        "lead_id": lead.id,
                        "labels": rows[-1]["labels"] | {"right_action": right},
                        "band": {},
                        "note": "settled",
                        "guideline_gap": False,
                        "overrides_majority": False,
                        "method": "manual",
                        "is_current": True,
                        "created_at": now,
                    }
                )
        for start in range(0, len(rows), 20_000):
            s.execute(insert(Annotation), rows[start : start + 20_000])
        s.execute(insert(Adjudication), adjudications)
    engine.dispose()
    return name


def run(url: str, n_items: int, out: Path, label: str) -> None:
    name = setup(url, n_items)
    engine = db.make_engine(url)
    actor = system_actor()
    with db.session_scope(engine) as s:
        campaign = storage.get_campaign(session=s, name=name)
        parts: list[str] = []

        def timed(part: str, call: Callable[[], T]) -> T:
            start, cpu = time.perf_counter(), time.process_time()
            with cyclic_gc_paused():  # as inside create_release
                result = call()
            parts.append(
                f"{part} {time.perf_counter() - start:.2f} s ({time.process_time() - cpu:.2f} CPU)"
            )
            return result

        table = timed(
            "load_labels",
            lambda: load_labels(session=s, actor=actor, campaign=campaign, with_text=True),
        )
        # Again: from the columns snapshot the first load stored (code that stores one).
        timed(
            "load_labels again",
            lambda: load_labels(session=s, actor=actor, campaign=campaign, with_text=True),
        )
        selection = timed("select_gold", lambda: select_gold(table))
        timed("agreement", lambda: agreement_report(table, actor=actor, n_resamples=1000))
        print(
            f"{label}: parts: {', '.join(parts)} "
            f"({len(selection.rows)} gold, {len(selection.held_back)} held back)"
        )
    timings = []
    for _ in range(2):
        with db.session_scope(engine) as s:
            campaign = storage.get_campaign(session=s, name=name)
            start, cpu = time.perf_counter(), time.process_time()
            result = create_release(session=s, actor=actor, campaign=campaign, out_dir=out)
            timings.append(time.perf_counter() - start)
            cpu = time.process_time() - cpu
        size = sum(p.stat().st_size for p in Path(result.path).rglob("*") if p.is_file())
        # CPU time beside wall time: on a shared machine the wall clock includes waiting.
        print(
            f"{label}: release v{result.version}: {result.gold} gold items in "
            f"{timings[-1]:.2f} s wall, {cpu:.2f} s CPU ({size / 1e6:.1f} MB of files"
            + (f", diff from v{result.parent_version}" if result.parent_version else "")
            + f"; load average {os.getloadavg()[0]:.1f})"
        )
    engine.dispose()
    # Both releases are counted in the figure: the target is for either.
    print(f"{label}: target < 15 s: {'met' if max(timings) < 15 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/bench.db", args.items, Path(tmp) / "exports", "sqlite")
        if args.postgres:
            schema = "bench_" + uuid.uuid4().hex[:8]
            admin = db.make_engine(args.postgres)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                sep = "&" if "?" in args.postgres else "?"
                url = f"{args.postgres}{sep}options=-csearch_path%3D{schema}"
                run(url, args.items, Path(tmp) / "exports-pg", "postgresql")
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
