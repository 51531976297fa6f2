"""A label-submission burst for the kill -9 test: claim + submit in a loop, one ack per commit.

Usage: python tests/crash_submit_worker.py DB_URL CAMPAIGN USER[,USER...] [LIMIT]

The users take turns; each turn claims the user's next item, then submits labels for it, each in its
own write transaction (what the Label page does). Only after that transaction has committed does
the worker print `ack ITEM_ID USER_ID`, flushed, so every line the test reads is a label the
app would have shown as saved. Stops after LIMIT acks (default: never) or when nobody has
anything left to label.
"""

from __future__ import annotations

import sys

from sqlmodel import select

from annotate import labeling, storage
from annotate.storage import db
from annotate.storage.models import User

LABELS = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "right_action": "answer",
    "observed_action": "answer",
    "failure_categories": [],
    "confidence": "high",
    "rationale": None,
}


def main(url: str, campaign_name: str, names: list[str], limit: int | None) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        campaign = storage.get_campaign(session=s, name=campaign_name)
        users = [s.exec(select(User).where(User.name == n)).one() for n in names]
    done: set[int] = set()
    acks = 0
    while len(done) < len(users):
        for user in users:
            if user.id in done:
                continue
            with labeling.write_session(engine) as s:
                claim = labeling.claim_next(session=s, user=user, campaign=campaign)
            if claim is None:
                done.add(user.id or 0)
                continue
            with labeling.write_session(engine) as s:
                labeling.submit(
                    session=s,
                    user=user,
                    assignment_id=claim.assignment.id or 0,
                    labels=LABELS,
                    duration_s=1.0,
                )
                item_id = claim.item.id
            # The transaction has committed: this label is acknowledged.
            print(f"ack {item_id} {user.id}", flush=True)
            acks += 1
            if limit is not None and acks >= limit:
                return


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2],
        sys.argv[3].split(","),
        int(sys.argv[4]) if len(sys.argv) > 4 else None,
    )
