"""What the answer to a submit carries, against a real `annotate serve` over its websocket: the
label form's JS and CSS are files the browser fetches once (never inline in a message), and the
schema's description comes once per session, later answers naming it by its id, unless the
browser asks for it again."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from annotate.app import labelform
from tests.browser.conftest import Server
from tests.stclient import Run, StreamlitClient
from tests.ws_helpers import open_app, serving, submit_labels

ASSETS = Path(labelform.__file__).with_name("assets")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("answer")
    with serving(workdir, f"sqlite:///{workdir / 'answer.db'}", {"ann": "annotator"}) as running:
        yield running


def form_proto(app: StreamlitClient) -> object:
    return app.find(key=labelform.KEY).proto


def sent(run: Run) -> bytes:
    return b"".join(m.SerializeToString() for m in run.messages)


def test_the_form_code_is_fetched_from_files_not_sent(server: Server) -> None:
    with open_app(server, "ann", page="label") as app:
        proto = form_proto(app)
        assert proto.js_content == "" and proto.css_content == ""  # type: ignore[attr-defined]
        js, css = proto.js_source_path, proto.css_source_path  # type: ignore[attr-defined]
        # Served where the browser looks (`/_stcore/bidi-components/<component>/<path>`), with
        # labels.js beside labelform.js, which imports it by a relative URL.
        base = f"{server.url}/_stcore/bidi-components/{labelform.NAME}/"
        for path, name in ((js, "labelform.js"), (css, "labelform.css"), ("labels.js", None)):
            with urllib.request.urlopen(base + path, timeout=30) as reply:
                assert reply.read() == (ASSETS / (name or path)).read_bytes()
                assert "javascript" in reply.headers["content-type"] or path == css
        run = submit_labels(app)
        body = sent(run)
        assert not run.exceptions and body
        for name in ("labels.js", "labelform.js", "labelform.css"):
            first = (ASSETS / name).read_text(encoding="utf-8").splitlines()[0].encode()
            assert first not in body, f"{name} is in the answer"


def test_the_schema_description_comes_once_then_its_id(server: Server) -> None:
    with open_app(server, "ann", page="label") as app:
        first = app.component_data(key=labelform.KEY)["form"]
        assert first["fields"], "the first answer describes the form"
        before = app.component_data(key=labelform.KEY)["item"]["assignment"]
        run = submit_labels(app)
        after = app.component_data(key=labelform.KEY)
        assert after["item"]["assignment"] != before, "the submit moved on"
        assert after["form"] == {"id": first["id"]}
        guideline = next(o["guideline"] for f in first["fields"] for o in f["options"])
        assert guideline.encode() not in sent(run)
        # A browser without that description asks again; the answer carries it in full.
        again = app.trigger(key=labelform.KEY, event="message", value={"kind": "form"})
        assert not again.exceptions
        data = app.component_data(key=labelform.KEY)
        assert data["form"] == first
        assert data["item"]["assignment"] == after["item"]["assignment"], "asking is no submit"
