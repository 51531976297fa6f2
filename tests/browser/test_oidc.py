"""Single sign-on in Chromium against a real OIDC provider on loopback (oidc-provider-mock):
sign in through the provider, stay signed in over a reload, sign out through the provider's
end-session page; an identity with no annotate user is refused with a message."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from annotate.intake.items import ItemRecord
from tests.browser.conftest import Guarded, Server, free_port, seed, start_server

pytestmark = pytest.mark.browser

EMAIL = "ann@example.org"
STRANGER = "stranger@example.org"
HEADER = ".st-key-item-header"
# The mock's pages pull pico.css from cdn.jsdelivr.net; nothing may leave the machine, not
# even an aborted attempt, so its base template is replaced by one without the stylesheet.
BASE_TEMPLATE = "<!doctype html><html lang='en'><main>{% block content %}{% endblock %}</main>"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """oidc-provider-mock on a free 127.0.0.1 port, in a thread; yields its base URL."""
    import jinja2
    import werkzeug.serving
    from oidc_provider_mock import app

    wsgi = app()
    wsgi.jinja_env.loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"_base.html": BASE_TEMPLATE}), wsgi.jinja_env.loader]
    )
    server = werkzeug.serving.make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, provider: str) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("oidc")
    url = f"sqlite:///{workdir / 'oidc.db'}"
    items = [
        ItemRecord(external_id=f"sso-{i}", prompt=f"Question {i}?", response=f"Answer {i}.")
        for i in range(3)
    ]
    # user_for_identity maps the identity's email to the user of that name.
    seed(url, items, {EMAIL: "annotator"}, name="sso", overlap=1, seed=1)
    port = free_port()
    (workdir / ".streamlit").mkdir()
    (workdir / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        'client_id = "annotate"\n'
        'client_secret = "annotate-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    running = start_server(["serve", "--port", str(port)], url, workdir, port)
    yield running
    running.stop()


def single_sign_on(page: Any, base_url: str, subject: str) -> None:
    """From the sign-in form to the provider's page, type `subject` (the mock makes it the
    email claim too), authorize, and wait for the app to settle."""
    page.goto(base_url + "/")
    page.wait_for_url("**/signin**")
    # The link goes straight to the provider: no app page (and no websocket) before it.
    page.get_by_role("link", name="Sign in with single sign-on").click()
    page.wait_for_url("**/oauth2/authorize**")
    page.fill("input[name=sub]", subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(base_url + "/**")
    page.wait_for_selector(f"{HEADER}, [data-testid=stAlert]")


def streamlit_cookies(page: Any) -> list[str]:
    return [c["name"] for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]


def test_single_sign_on_reload_and_sign_out(server: Server, guarded: Guarded) -> None:
    page = guarded.page
    single_sign_on(page, server.url, EMAIL)
    page.wait_for_selector(HEADER)
    page.get_by_text(f"Signed in as {EMAIL} · annotator").wait_for()
    page.get_by_role("link", name="Label").wait_for()

    page.reload()
    page.wait_for_selector(HEADER)
    assert "/signin" not in page.url
    page.get_by_text(f"Signed in as {EMAIL} · annotator").wait_for()

    # Sign out: Streamlit's /auth/logout sends the browser to the provider's end-session
    # page, which returns it to /oauth2callback, then `/`, and our gate to the sign-in form.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/oauth2/end_session**")
    page.get_by_role("button", name="End session").click()
    page.wait_for_url("**/signin**")
    assert streamlit_cookies(page) == []
    page.goto(server.url + "/label")
    page.wait_for_url("**/signin**")
    assert guarded.blocked == []


EVIL = "a` [click here](http://evil.example/) `b"


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        (STRANGER, STRANGER),  # in a code span: shown without the backticks
        # A claim that closes the message's code span early must not become a link: the
        # message then shows exactly as written, backticks and all.
        (EVIL, f"`{EVIL}`"),
    ],
)
def test_identity_without_a_user_is_refused(
    server: Server, guarded: Guarded, subject: str, shown: str
) -> None:
    page = guarded.page
    single_sign_on(page, server.url, subject)
    message = page.locator("[data-testid=stAlert] [data-testid=stMarkdownContainer]")
    assert message.inner_text().strip() == (
        f"No annotate user for {shown}: ask an admin to add one with that name"
    )
    # No disguised link; a bare URL may still be autolinked (GFM), but then it shows itself.
    links = page.locator("[data-testid=stAlert] a")
    assert all(a.inner_text() == a.get_attribute("href") for a in links.all())
    assert page.locator(HEADER).count() == 0
    assert page.locator("[data-testid=stException]").count() == 0
    assert "Traceback" not in page.content()
    assert guarded.blocked == []
