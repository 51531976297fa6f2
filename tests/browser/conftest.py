"""Browser fixtures: `annotate serve` on a free loopback port, Debian's Chromium via Playwright.

Every request the page makes to anything but the loopback server is recorded and aborted, so
nothing ever leaves the machine, and a test can assert that nothing was even attempted.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from annotate import storage
from annotate.accounts.auth import system_actor
from annotate.intake.items import ItemRecord
from annotate.schema import load_schema
from annotate.storage import db

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse"
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def annotate_command(*args: str) -> list[str]:
    """`annotate ARGS` through the real CLI entry point, from this checkout."""
    return [sys.executable, "-c", "from annotate.cli import main; main()", *args]


def child_env(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATE_")}
    env["ANNOTATE_DATABASE_URL"] = database_url
    env.update(extra or {})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Server:
    """A running `annotate serve` (or `annotate demo`) and its database."""

    url: str
    database_url: str
    process: subprocess.Popen[str]
    log: Path
    output: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(
    args: list[str],
    database_url: str,
    workdir: Path,
    port: int,
    env: dict[str, str] | None = None,
) -> Server:
    """Run `annotate ARGS` in `workdir` (with extra variables `env`) until its health check
    answers."""
    log = workdir / f"server-{port}.log"
    handle = log.open("w")
    process = subprocess.Popen(
        annotate_command(*args),
        cwd=workdir,
        env=child_env(database_url, env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    server = Server(url=url, database_url=database_url, process=process, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not answer within 60 s:\n{log.read_text()}")


def seed(
    database_url: str,
    items: list[ItemRecord],
    users: dict[str, str],
    schema_file: str = "refusal-v1.yaml",
    **campaign: Any,
) -> None:
    """A migrated database with `users` ({name: role}) and one campaign holding `items`, on
    the shipped schema `schema_file`."""
    engine = db.make_engine(database_url)
    db.migrate(engine)
    schema = load_schema(ROOT / "schemas" / schema_file)
    actor = system_actor()
    with db.session_scope(engine) as s:
        for name, role in users.items():
            storage.add_user(session=s, actor=actor, name=name, role=role, password=PASSWORD)
        made = storage.create_campaign(session=s, actor=actor, schema=schema, **campaign)
        storage.import_items(session=s, actor=actor, campaign=made, records=items)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, for the whole module."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Guarded:
    """A page whose off-machine requests are recorded and aborted."""

    page: Any
    blocked: list[str]


@pytest.fixture
def guarded(browser: Any) -> Iterator[Guarded]:
    """A fresh browser context and page; every non-loopback request is recorded and aborted."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    blocked: list[str] = []

    def gate(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", gate)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield Guarded(page=page, blocked=blocked)
    context.close()


def sign_in(page: Any, base_url: str, name: str, password: str = PASSWORD) -> None:
    """Sign in with the keyboard only: the form has the focus on the name field."""
    page.goto(base_url + "/")
    page.wait_for_url("**/signin**")
    # The form puts the focus on the name field itself (autofocus): no click needed.
    # A selector, not wait_for_function: the sign-in page's CSP forbids eval, which string
    # predicates can need, and that made this wait fail now and then.
    page.locator("#name:focus").wait_for()
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    # Annotators land on Label (an item, or a notice); leads on Review, admins on Campaigns.
    page.wait_for_selector(
        ".st-key-item-header, [data-testid=stAlert], [data-testid=stHeading], [data-testid=stTabs]"
    )
