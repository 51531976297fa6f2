"""An admin's import through the file uploader in Chromium, past the upload guard: a small
file is imported; one over ANNOTATE_MAX_UPLOAD_MB is refused by the uploader itself (the cap
reaches Streamlit's server.maxUploadSize) and nothing of it is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import func, select

from annotate.intake.items import ItemRecord
from annotate.storage import db
from annotate.storage.models import Item
from tests.browser.conftest import Guarded, Server, free_port, seed, sign_in, start_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("upload")
    url = f"sqlite:///{workdir / 'upload.db'}"
    items = [ItemRecord(external_id="u-0", prompt="Question?", response="Answer.")]
    seed(url, items, {"adam": "admin"}, name="c1", overlap=1, seed=1)
    port = free_port()
    running = start_server(
        ["serve", "--port", str(port)], url, workdir, port, env={"ANNOTATE_MAX_UPLOAD_MB": "1"}
    )
    yield running
    running.stop()


def items_in(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as s:
            return int(s.exec(select(func.count()).select_from(Item)).one())
    finally:
        engine.dispose()


def open_import(page: object, base_url: str) -> None:
    page.goto(base_url + "/campaigns")  # type: ignore[attr-defined]
    page.get_by_role("tab", name="Manage a campaign").click()  # type: ignore[attr-defined]
    page.get_by_text("Import items").wait_for()  # type: ignore[attr-defined]


def test_admin_imports_a_file_and_the_cap_reaches_the_uploader(
    server: Server, guarded: Guarded, tmp_path: Path
) -> None:
    page = guarded.page
    sign_in(page, server.url, "adam")
    open_import(page, server.url)
    small = tmp_path / "new.jsonl"
    rows = [{"id": f"n-{i}", "prompt": f"New {i}?", "response": f"Yes {i}."} for i in range(2)]
    small.write_text("".join(json.dumps(r) + "\n" for r in rows))
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(small))
    page.get_by_text("new.jsonl").wait_for()
    page.get_by_role("button", name="Import").click()
    page.get_by_text("Imported 2 items into c1").wait_for()
    assert items_in(server.database_url) == 3

    big = tmp_path / "big.jsonl"
    row = json.dumps({"id": "b", "prompt": "x" * 1000, "response": "y"}) + "\n"
    big.write_text(row * 1200)  # about 1.2 MB
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(big))
    page.get_by_text("1.0MB or smaller", exact=False).wait_for()
    assert items_in(server.database_url) == 3
    assert guarded.blocked == []
