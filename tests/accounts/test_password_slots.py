"""A sign-in that finds every password check busy is told to wait (429), not refused (401)."""

from __future__ import annotations

import pytest

from annotate.accounts.auth import _Hashing
from annotate.app.server import _signin_refused
from annotate.errors import SignInDelayed


def test_busy_password_checks_answer_429_with_retry_after() -> None:
    hashing = _Hashing(memory_kib=8, time_cost=1, parallelism=1, at_once=1)
    hashing.wait_s = 0.05
    assert hashing.run(lambda: "checked") == "checked"
    hashing.slots.acquire()  # another sign-in holds the only slot
    try:
        with pytest.raises(SignInDelayed) as caught:
            hashing.run(lambda: "checked")
    finally:
        hashing.slots.release()
    reply = _signin_refused(caught.value, name="bob", next_path="/")
    assert reply.status_code == 429
    assert int(reply.headers["retry-after"]) >= 1
    assert b"Too many sign-ins at once" in reply.body
