"""Lead pages while annotators work: how long a lead's page waits for the campaign's labels.

Usage: python bench/bench_warm_labels.py [--items N] [--seconds S] [--code DIR]
Setup (not timed): `bench_release.setup`, a campaign of N items (default 100,000) with three
annotators each, on SQLite. Timed, in one process as `annotate serve` runs the lead pages:
`annotate.app.lead.label_table` (what the Dashboard, Review and Adjudicate pages call before
any figure), first cold, then once a second for S seconds while a writer thread saves a new
label every 200 ms. With warm labels a call after a submit returns the labels already loaded
(the figures cached from them hold) while the new version loads in the background; before,
every call after a submit reloaded the whole table. `--code DIR` runs another checkout's
`annotate` (e.g. the code before the change) for a baseline in the same run.
Prints the cold load, and p50 / p95 / max of the later calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--code", type=Path, default=None)
    args = parser.parse_args()
    if args.code is not None:
        sys.path.insert(0, str(args.code))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import warnings

    warnings.filterwarnings("ignore")
    from bench_release import setup
    from sqlmodel import select

    import annotate
    from annotate import storage
    from annotate.accounts.auth import system_actor
    from annotate.app import lead
    from annotate.app.context import AppContext
    from annotate.settings import get_settings
    from annotate.storage import db
    from annotate.storage.models import Campaign, Item, User

    print(f"code: {Path(annotate.__file__).parent}")
    folder = Path(tempfile.mkdtemp(prefix="bench-warm-"))
    url = f"sqlite:///{folder / 'warm.db'}"
    started = time.perf_counter()
    name = setup(url, args.items)
    print(f"setup: {args.items} items x 3 labels in {time.perf_counter() - started:.1f} s")
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        campaign = s.exec(select(Campaign).where(Campaign.name == name)).one()
        lena = storage.add_user(session=s, actor=system_actor(), name="lena", role="lead")
        writer = storage.add_user(session=s, actor=system_actor(), name="wanda")
        item_ids = list(s.exec(select(Item.id).where(Item.campaign_id == campaign.id)).all())
    ctx = AppContext(settings=get_settings(database_url=url), engine=engine, user=lena, pages={})

    t0 = time.perf_counter()
    lead.label_table(ctx, campaign)
    cold = time.perf_counter() - t0
    print(f"cold load: {cold:.2f} s")

    stop = threading.Event()
    written = [0]

    def write() -> None:
        labels = {
            "intent": "benign",
            "epistemic_status": "answerable",
            "right_action": "answer",
            "observed_action": "answer",
            "failure_categories": [],
            "confidence": "high",
        }
        while not stop.is_set():
            with db.session_scope(engine) as s:
                user = s.get(User, writer.id)
                item = s.get(Item, item_ids[written[0] % len(item_ids)])
                assert user is not None and item is not None
                storage.save_annotation(session=s, user=user, item=item, labels=labels)
            written[0] += 1
            stop.wait(0.2)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    times: list[float] = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        lead.label_table(ctx, campaign)
        times.append(time.perf_counter() - t0)
        time.sleep(max(0.0, 1.0 - times[-1]))
    stop.set()
    thread.join()
    times.sort()
    p50 = times[len(times) // 2]
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    load = os.getloadavg()[0]
    warm = next(iter(lead._WARM.values()))
    # How long the last background refresh took (incremental from the held columns, where
    # the code has them; a full reload before).
    print(f"last background refresh: {warm.load_s * 1000:.0f} ms wall")
    print(
        f"later calls while a label is saved every 200 ms: {len(times)} calls, "
        f"{written[0]} labels written; p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {times[-1] * 1000:.0f} ms (load average {load:.1f}, {os.cpu_count()} CPUs)"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
