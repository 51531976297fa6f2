"""A seeded `annotate serve` for the protocol-level tests (tests/stclient.py speaks to it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlmodel import func, select

from annotate import storage
from annotate.accounts.auth import system_actor
from annotate.intake.items import ItemRecord
from annotate.storage import db
from annotate.storage.models import Annotation, User
from tests.browser.conftest import PASSWORD, Server, free_port, seed, start_server
from tests.stclient import StreamlitClient, sign_in

KEY = "protocol-test-signing-key-" + "q" * 30
LABELS = {
    "intent": "benign",
    "epistemic_status": "answerable",
    "right_action": "answer",
    "observed_action": "answer",
    "confidence": "high",
}


@contextmanager
def serving(
    workdir: Path, url: str, users: dict[str, str], env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`annotate serve` on a free port over a database seeded with `users` ({name: role}) and
    campaign `c1` of 12 items; stopped afterwards."""
    items = [
        ItemRecord(external_id=f"w-{i:02}", prompt=f"Question {i}?", response=f"Answer {i}.")
        for i in range(12)
    ]
    seed(url, items, users, name="c1", overlap=3, seed=1)
    port = free_port()
    server = start_server(
        ["serve", "--port", str(port)],
        url,
        workdir,
        port,
        env={"ANNOTATE_SECRET_KEY": KEY, **(env or {})},
    )
    try:
        yield server
    finally:
        server.stop()


def open_app(server: Server, name: str, *, page: str = "") -> StreamlitClient:
    """A connected client signed in as `name`, after a first full run of `page`."""
    client = StreamlitClient(server.url, cookie=sign_in(server.url, name, PASSWORD))
    client.connect()
    client.rerun(page=page)
    return client


def choose_labels(client: StreamlitClient, labels: dict[str, str] = LABELS) -> None:
    """Press one option button per field on the label form (each a fragment rerun)."""
    for field, value in labels.items():
        client.click(key=f"opt-{field}-{value}")


def annotations_of(url: str, name: str) -> int:
    """How many annotations `name` has stored."""
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as s:
            user = storage.get_user(session=s, name=name)
            return int(s.exec(select(func.count()).where(Annotation.user_id == user.id)).one())
    finally:
        engine.dispose()


def change_user(
    url: str,
    name: str,
    *,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """As an admin would: a new role, (de)activation or a new password for `name`."""
    engine = db.make_engine(url)
    actor = system_actor()
    try:
        with db.session_scope(engine) as s:
            if role is not None:
                storage.set_role(session=s, actor=actor, name=name, role=role)
            if active is not None:
                storage.set_active(session=s, actor=actor, name=name, active=active)
            if password is not None:
                storage.set_password(session=s, actor=actor, name=name, password=password)
            return storage.get_user(session=s, name=name)
    finally:
        engine.dispose()
