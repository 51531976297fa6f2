"""`annotate agreement` as a whole process, and `load_labels` in process, at 100,000 x 5.

Usage: python bench/bench_agreement_cli.py [--items N] [--code DIR ...] [--repeats R]
Setup (not timed): an SQLite campaign of N items (default 100,000) labeled by five
annotators, in the pattern of `bench_release.setup` (almost all unanimous on the right
action, a few hundred adjudicated), with labels written over ~70 days (distinct timestamps).
The database is built once, by this checkout's code, and read by every checkout measured.
Timed, for this checkout and for each `--code DIR` (another checkout, e.g. the code before the
change, run with PYTHONPATH=DIR) in the same session, alternating:
- `python -m annotate.cli agreement --json --bootstrap 0` as a subprocess: wall time and the
  child's CPU time (user + system), best and median of R runs;
- `queries.load_labels` in a fresh process (best of R, wall and CPU), and the same process's
  import time of `annotate.cli`.
Before those, one run of this checkout with the stored snapshot deleted (a full read, which
stores the snapshot the later runs start from). Checks that every checkout prints the same
JSON (byte for byte). Prints the load average
beside each figure: wall times are inflated by other work on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RIGHT = ["answer", "answer_with_caveat", "refuse", "clarify", "abstain"]
INTENT = {"answer": "benign", "answer_with_caveat": "benign", "refuse": "harmful"}
ANNOTATORS = 5

CHILD = r"""
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
import annotate.cli  # what the command imports before it runs
from annotate.accounts.auth import system_actor
from annotate.storage import db
from annotate.storage.campaigns import get_campaign
from annotate.storage.queries import load_labels
imported = (time.perf_counter() - t0, time.process_time() - c0)
engine = db.make_engine(sys.argv[1])
best = None
for _ in range(int(sys.argv[3])):
    with db.session_scope(engine) as s:
        campaign = get_campaign(session=s, name=sys.argv[2])
        t0, c0 = time.perf_counter(), time.process_time()
        table = load_labels(session=s, actor=system_actor(), campaign=campaign)
        took = (time.perf_counter() - t0, time.process_time() - c0)
        best = took if best is None or took[0] < best[0] else best
print(f"{imported[0]:.3f} {imported[1]:.3f} {best[0]:.3f} {best[1]:.3f} {len(table.annotations)}")
print(annotate.__file__)
"""


def setup(url: str, n_items: int) -> str:
    """A campaign of `n_items` items, five labels each; returns its name."""
    from sqlalchemy import insert

    from annotate import storage
    from annotate.accounts.auth import system_actor
    from annotate.schema import resolve_schema
    from annotate.settings import get_settings
    from annotate.storage import db
    from annotate.storage.models import Adjudication, Annotation, Item

    rng = random.Random(5)
    engine = db.make_engine(url)
    db.migrate(engine)
    actor = system_actor()
    name = f"bench-{uuid.uuid4().hex[:6]}"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session_scope(engine) as s:
        campaign = storage.create_campaign(
            session=s,
            actor=actor,
            name=name,
            schema=resolve_schema(None, get_settings().schemas_dir),
            overlap=ANNOTATORS,
        )
        s.execute(
            insert(Item),
            [
                {
                    "campaign_id": campaign.id,
                    "external_id": f"b-{n:06d}",
                    "prompt": "p?",
                    "response": "r.",
                    "model": f"m{n % 5}",
                    "category": f"c{n % 18}",
                    "group_id": f"g{n // 4}",
                    "meta": {},
                    "content_hash": f"{n:064x}",
                    "created_at": start,
                    "human_labels": ANNOTATORS,
                }
                for n in range(n_items)
            ],
        )
        users = [
            storage.add_user(session=s, actor=actor, name=f"{name}-{i}") for i in range(ANNOTATORS)
        ]
        lead = storage.add_user(session=s, actor=actor, name=f"{name}-lead", role="lead")
        item_ids = [
            i
            for (i,) in s.execute(
                Item.__table__.select()  # type: ignore[attr-defined]
                .with_only_columns(Item.id)
                .where(Item.campaign_id == campaign.id)
                .order_by(Item.id)
            )
        ]
        rows, adjudications = [], []
        for n, item_id in enumerate(item_ids):
            right = RIGHT[n % len(RIGHT)]
            split = n % 250 == 0
            for k, user in enumerate(users):
                when = start + timedelta(seconds=60 * n + 7 * k)
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
                        "flagged": n % 97 == k,
                        "flag_note": "unclear" if n % 97 == k else None,
                        "overridden_rules": [],
                        "duration_s": 20.0 + (n % 40),
                        "origin": "app",
                        "created_at": when,
                        "updated_at": when,
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
                        "created_at": start + timedelta(seconds=60 * n + 50),
                    }
                )
        for first in range(0, len(rows), 20_000):
            s.execute(insert(Annotation), rows[first : first + 20_000])
        s.execute(insert(Adjudication), adjudications)
    engine.dispose()
    return name


def _cli(code: Path, url: str, name: str) -> tuple[float, float, bytes]:
    env = dict(os.environ, PYTHONPATH=str(code))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "annotate.cli", "agreement", "--json", "--bootstrap", "0"]
        + ["-c", name, "--db", url],
        env=env,
        capture_output=True,
        check=True,
        cwd=tempfile.gettempdir(),  # not a checkout: `python -m` puts the cwd first on sys.path
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def _in_process(code: Path, url: str, name: str, repeats: int) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(code))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, name, str(repeats)],
        env=env,
        capture_output=True,
        check=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    return done.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--code", type=Path, action="append", default=[])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", default="", help="reuse this SQLite file (built if missing)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    folder = Path(tempfile.mkdtemp(prefix="bench-agreement-cli-"))
    path = Path(args.db) if args.db else folder / "agreement.db"
    url = f"sqlite:///{path}"
    marker = path.with_suffix(".name")
    if path.exists() and marker.exists():
        name = marker.read_text()
    else:
        started = time.perf_counter()
        name = setup(url, args.items)
        marker.write_text(name)
        took = time.perf_counter() - started
        print(f"setup: {args.items} items x {ANNOTATORS} labels in {took:.1f} s (not timed)")
    codes = [ROOT, *args.code]
    runs: dict[Path, list[tuple[float, float]]] = {c: [] for c in codes}
    outputs: dict[Path, bytes] = {}
    # The first run with no stored snapshot reads every row and stores one (this checkout).
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM label_snapshot")
    wall, cpu, out = _cli(ROOT, url, name)
    print(
        f"{ROOT}: first run, no snapshot stored yet: {wall:.2f} s wall, {cpu:.2f} s CPU "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    for _ in range(args.repeats):
        for code in codes:  # alternated, so that both see the same load
            wall, cpu, out = _cli(code, url, name)
            runs[code].append((wall, cpu))
            outputs[code] = out
    for code in codes:
        walls = sorted(w for w, _ in runs[code])
        cpus = sorted(c for _, c in runs[code])
        print(
            f"{code}: agreement --json --bootstrap 0 (whole process): best {walls[0]:.2f} s "
            f"wall, median {statistics.median(walls):.2f} s; CPU best {cpus[0]:.2f} s, median "
            f"{statistics.median(cpus):.2f} s (load average {os.getloadavg()[0]:.1f})"
        )
    for code in codes:
        imp_w, imp_c, load_w, load_c, rows, module = _in_process(code, url, name, args.repeats)
        assert module.startswith(str(code)), (module, code)
        print(
            f"{code}: load_labels in process: best {float(load_w):.2f} s wall, "
            f"{float(load_c):.2f} s CPU ({rows} annotations); import annotate.cli "
            f"{float(imp_w):.2f} s wall, {float(imp_c):.2f} s CPU "
            f"(load average {os.getloadavg()[0]:.1f})"
        )
    first = outputs[codes[0]]
    same = all(out == first for out in outputs.values())
    print(f"agreement JSON identical across checkouts: {same} ({len(first)} bytes)")


if __name__ == "__main__":
    main()
