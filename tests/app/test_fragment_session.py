"""Fragment reruns check the session like full runs, against a real `annotate serve` over
its websocket: after sign-out, a password change or deactivation, pressing Submit in a tab
left open saves nothing, and a lead demoted to annotator no longer gets the dashboard's
fragments. Each change is made while the tab is open; the next click is a fragment rerun."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from annotate.app.context import SESSION_CHANGED
from tests.browser.conftest import Server
from tests.stclient import StreamlitClient
from tests.ws_helpers import annotations_of, change_user, open_app, serving, submit_labels

USERS = {
    "lee": "lead",
    "ann": "annotator",
    "out": "annotator",
    "pwd": "annotator",
    "gone": "annotator",
    "prom": "annotator",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("fragments")
    url = f"sqlite:///{workdir / 'fragments.db'}"
    with serving(workdir, url, USERS) as running:
        yield running


def sign_out(server: Server, app: StreamlitClient) -> None:
    """GET /signout with the tab's cookie, as the sign-out link in another tab does."""
    request = urllib.request.Request(
        server.url + "/signout", headers={"cookie": f"annotate_session={app.cookie}"}
    )
    with urllib.request.urlopen(request, timeout=30):
        pass


def test_submit_from_an_unchanged_session_saves(server: Server) -> None:
    # The control: the same steps with nothing changed do save the label.
    with open_app(server, "ann") as app:
        run = submit_labels(app)
        assert not run.exceptions
    assert annotations_of(server.database_url, "ann") == 1


CHANGES: dict[str, tuple[str, Callable[[Server, StreamlitClient], object], str]] = {
    "sign-out": ("out", sign_out, "You signed out; sign in again"),
    "password": (
        "pwd",
        lambda server, _: change_user(server.database_url, "pwd", password="Another-pw-1"),
        "Your password was changed; sign in again",
    ),
    "deactivation": (
        "gone",
        lambda server, _: change_user(server.database_url, "gone", active=False),
        "This account can no longer sign in; ask an admin",
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_fragment_rerun_after_the_session_changed_saves_nothing(
    server: Server, change: str
) -> None:
    name, apply, message = CHANGES[change]
    with open_app(server, name) as app:
        apply(server, app)
        run = submit_labels(app)
        shown = " ".join(run.texts())
        assert message in shown and SESSION_CHANGED in shown
        assert not app.elements(kind="bidi_component"), "the label form is still shown"
        assert not run.exceptions
    assert annotations_of(server.database_url, name) == 0


def test_a_submit_after_a_role_change_saves_nothing(server: Server) -> None:
    # A submit leaves the session check to its own transaction, which reads the user back:
    # a new role (no new session generation) is caught there, and nothing is saved.
    with open_app(server, "prom") as app:
        change_user(server.database_url, "prom", role="lead")
        run = submit_labels(app)
        # The whole app reran for the new role (a lead labels too: the form is back).
        assert SESSION_CHANGED in " ".join(run.texts())
        assert not run.exceptions
    assert annotations_of(server.database_url, "prom") == 0


def test_a_demoted_lead_gets_no_more_dashboard_fragments(server: Server) -> None:
    with open_app(server, "lee", page="dashboard") as app:
        assert "Alpha over time" in app.texts() and "Annotators" in app.texts()
        # A fragment rerun while still a lead: the fragment answers.
        run = app.set_value(key="dash-time-batch", value=150)
        assert "Alpha over time" in run.texts()
        change_user(server.database_url, "lee", role="annotator")
        run = app.set_value(key="dash-time-batch", value=200)
        shown = run.texts()
        assert "Alpha over time" not in shown and "Annotators" not in shown
        assert "Signed in as `lee` · annotator" in shown and SESSION_CHANGED in shown
        assert not any(t in app.texts() for t in ("Alpha over time", "Annotators"))


def test_every_fragment_of_the_app_is_checked() -> None:
    # A fragment made with st.fragment (or st.dialog, also a fragment) directly would skip the
    # check; only context.fragment may call st.fragment.
    app_dir = Path(__file__).resolve().parents[2] / "annotate" / "app"
    direct = [
        f"{path.name}:{n}"
        for path in sorted(app_dir.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"@st\.(fragment|dialog)\b|\bst\.(fragment|dialog)\(", line)
        and not (path.name == "context.py" and "return st.fragment(checked" in line)
    ]
    assert direct == []
    assert "@fragment" in (app_dir / "pages" / "label.py").read_text()
