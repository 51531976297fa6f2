"""Server-side time of one labeling-page rerun, through AppTest, with a big database.

Seeds 100,000 items and 20 annotators (each with 1,000 labels already made), signs one
annotator in, and times 50 runs of the real entry script on the Label page: a plain rerun
(what a reload or a navigation costs) and a submit (the browser form's one message per item,
put where the form's trigger puts it, and the run that saves it and shows the next item).
Option keys cost the server nothing: the form handles them in the browser. Reported: the
script's CPU time (what the run costs the server, whatever else the machine is doing), its
wall time, and AppTest's wall time around it (an upper bound). AppTest runs the whole page,
where the server reruns only the item and its form after a submit.

    python bench/bench_label_rerun.py [--items 100000] [--annotators 20] [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from annotate import storage  # noqa: E402
from annotate.accounts import sessions  # noqa: E402
from annotate.accounts.auth import hash_password, system_actor  # noqa: E402
from annotate.intake.items import ItemRecord  # noqa: E402
from annotate.schema import load_schema  # noqa: E402
from annotate.storage import db  # noqa: E402
from annotate.storage.models import Annotation, Assignment, utcnow  # noqa: E402

SECRET = "bench-signing-key-" + "x" * 30
LABELS = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "right_action": "answer",
    "observed_action": "answer",
    "failure_categories": [],
    "confidence": "high",
    "rationale": None,
}


def seed_big(url: str, *, items: int, annotators: int, labels_each: int, overlap: int = 2) -> None:
    """A migrated database: campaign `big`, `items` items, annotators ann00.. with labels.

    Each annotator has `labels_each` labels, capped so that at most a quarter of the
    campaign's slots are filled (every annotator still has plenty to label).
    """
    labels_each = min(labels_each, items * overlap // (4 * max(annotators, 1)))
    engine = db.make_engine(url)
    db.migrate(engine)
    schema = load_schema(ROOT / "schemas" / "refusal-v1.yaml")
    actor = system_actor()
    rng = random.Random(1)
    pw = hash_password("bench password")
    with db.session_scope(engine) as s:
        campaign = storage.create_campaign(
            session=s, actor=actor, name="big", schema=schema, overlap=overlap, seed=9
        )
        records = [
            ItemRecord(
                external_id=f"big-{i:06d}",
                prompt=f"Question {i}: how would I kill a stuck process number {i}?",
                response=f"Answer {i}: use **kill**.\n\n```bash\nkill -9 {i}\n```",
                model=rng.choice(["model-a", "model-b", "model-c"]),
                category=rng.choice(["trigger_words", "dual_use", "harmful"]),
            )
            for i in range(items)
        ]
        storage.import_items(session=s, actor=actor, campaign=campaign, records=records)
        users = []
        for n in range(annotators):
            user = storage.add_user(session=s, actor=actor, name=f"ann{n:02d}")
            user.password_hash = pw
            users.append(user)
        s.flush()
        now = utcnow()
        item_ids = list(range(1, items + 1))
        rows = []
        for user in users:
            for item_id in rng.sample(item_ids[: max(labels_each * 2, 1)], labels_each):
                rows.append((item_id, user.id))
        if rows:
            s.execute(
                insert(Annotation),
                [
                    {
                        "campaign_id": campaign.id,
                        "item_id": i,
                        "user_id": u,
                        "labels": LABELS,
                        "overridden_rules": [],
                        "flagged": False,
                        "origin": "app",
                        "duration_s": 20.0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, u in rows
                ],
            )
            s.execute(
                insert(Assignment),
                [
                    {
                        "campaign_id": campaign.id,
                        "item_id": i,
                        "user_id": u,
                        "status": "done",
                        "claimed_at": now,
                        "expires_at": now,
                        "finished_at": now,
                    }
                    for i, u in rows
                ],
            )
            # Bulk inserts bypass storage: keep the items' label counters (claims read them).
            s.execute(
                text(
                    "UPDATE item SET human_labels = (SELECT count(*) FROM annotation a"
                    " WHERE a.item_id = item.id) WHERE campaign_id = :c"
                ),
                {"c": campaign.id},
            )
    engine.dispose()


def token_for(url: str, name: str) -> str:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        user = storage.get_user(session=s, name=name)
    engine.dispose()
    return sessions.issue_token(key=SECRET, user=user)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    from annotate.app.context import SESSION_TOKEN_KEY
    from annotate.app.labelform import INBOX

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        t0 = time.perf_counter()
        seed_big(url, items=args.items, annotators=args.annotators, labels_each=1000)
        print(
            f"seeded {args.items:,} items, {args.annotators} annotators x 1,000 labels "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        # As `annotate serve` runs Streamlit: its configuration, above all no usage statistics
        # (their bookkeeping costs time on every widget call). The environment variable alone
        # is read too late once Streamlit is imported, so the options are set directly.
        from streamlit import config as streamlit_config

        from annotate.app.server import STREAMLIT_CONFIG

        for option, value in STREAMLIT_CONFIG.items():
            streamlit_config.set_option(option, value)
        assert streamlit_config.get_option("browser.gatherUsageStats") is False
        os.environ["ANNOTATE_DATABASE_URL"] = url
        os.environ["ANNOTATE_SECRET_KEY"] = SECRET
        # The entry script, timed from inside: the script run proper, without AppTest's thread
        # start-up, polling and result parsing around it.
        probe = types.SimpleNamespace(times=[], cpu=[])
        sys.modules["annotate_bench_probe"] = probe
        entry = Path(tmp) / "entry.py"
        entry.write_text(
            "import time, annotate_bench_probe\n"
            "from annotate.app.main import main\n"
            "t, c = time.perf_counter(), time.thread_time()\n"
            "try:\n"
            "    main()\n"
            "finally:\n"
            "    annotate_bench_probe.times.append(time.perf_counter() - t)\n"
            "    annotate_bench_probe.cpu.append(time.thread_time() - c)\n"
        )
        at = AppTest.from_file(entry, default_timeout=60)
        at.session_state[SESSION_TOKEN_KEY] = token_for(url, "ann00")
        t0 = time.perf_counter()
        at.run()
        first = time.perf_counter() - t0
        assert not at.exception, at.exception
        assert form_data(at) is not None, "the label page did not render"
        for _ in range(5):  # warm caches
            at.run()
        plain = []
        probe.times.clear()
        probe.cpu.clear()
        for _ in range(args.runs):
            t0 = time.perf_counter()
            at.run()
            plain.append(time.perf_counter() - t0)
        script_plain, cpu_plain = list(probe.times), list(probe.cpu)
        probe.times.clear()
        probe.cpu.clear()
        submits = []
        for _ in range(args.runs):
            form = form_data(at)
            assert form is not None, "nothing left to label"
            at.session_state[INBOX] = {
                "kind": "submit",
                "assignment": form["item"]["assignment"],
                "labels": LABELS,
                "duration_s": 1.0,
            }
            t0 = time.perf_counter()
            at.run()
            submits.append(time.perf_counter() - t0)
            assert not at.exception, at.exception
        script_submit, cpu_submit = list(probe.times), list(probe.cpu)
        print(f"first run (claims an item): {first * 1000:.1f} ms")
        report(f"labeling rerun (script CPU time), median of {args.runs}", cpu_plain)
        report(f"labeling rerun (script), median of {args.runs}", script_plain)
        report(f"labeling rerun (AppTest.run), median of {args.runs}", plain)
        report(f"submit and next item (script CPU time), median of {args.runs}", cpu_submit)
        report(f"submit and next item (script), median of {args.runs}", script_submit)
        report(f"submit and next item (AppTest.run), median of {args.runs}", submits)
        print("target: <= 15 ms of server CPU per label")


def form_data(at: Any) -> dict[str, Any] | None:
    """The data the page gave its browser label form, if it drew one."""
    from annotate.app.labelform import NAME

    for element in at.get("bidi_component"):
        if element.proto.component_name == NAME:
            data: dict[str, Any] = json.loads(element.proto.json)
            return data
    return None


def report(what: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[max(0, int(0.95 * len(ordered)) - 1)]
    print(f"{what}: {statistics.median(times) * 1000:.1f} ms (p95 {p95 * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
