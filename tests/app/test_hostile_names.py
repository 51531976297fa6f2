"""Names from users' files and accounts shown as text: an import error quoting a hostile
column name stays inert, and the dashboard's pair confusion works for annotator names holding
`.` (single sign-on emails) or ` vs `."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from lead_helpers import Seeded, seed_campaign
from markdown_it import MarkdownIt
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import User
from tests import test_app_support as support
from tests.test_app_support import AppDB, page_app, texts

EVIL = "[click me](https://evil.example/steal)"


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from support.app_db_fixture(db_url, monkeypatch, schema, items=2)


def _links(markdown: str) -> list[str]:
    tokens = MarkdownIt("commonmark").parse(markdown)
    found = []
    for block in tokens:
        for tok in [block, *(block.children or [])]:
            if tok.type in {"link_open", "image", "html_inline", "html_block"}:
                found.append(tok.type)
    return found


def test_import_errors_show_column_names_as_text(app_db: AppDB) -> None:
    at = page_app(app_db, "adam", "admin", "render_campaigns").run()
    header = f"id,prompt,response,{EVIL},{EVIL}"
    form = at.get("form")[1]
    form.file_uploader[0].set_value(("evil.csv", f"{header}\nn1,q,a,x,y\n".encode(), "text/csv"))
    form.button[0].click().run()
    [error] = texts(at.error)
    assert "Nothing was imported" in error and "appear more than once" in error
    assert _links(error) == [], error
    assert "https://evil.example" not in error  # Streamlit would autolink a bare URL
    assert "click me" in error  # still shown, as text


# -- dashboard -------------------------------------------------------------------------------

ODD = {"alice": "ann.smith@example.org", "bob": "a vs b"}


@pytest.fixture
def lead_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from support.app_db_fixture(db_url, monkeypatch, schema)


@pytest.fixture
def seeded(lead_db: AppDB, schema: LabelSchema) -> Seeded:
    with db.session_scope(lead_db.engine) as s:
        result = seed_campaign(s, schema, name="lead")
    with db.session_scope(lead_db.engine) as s:
        for old, new in ODD.items():
            row = s.exec(select(User).where(User.name == old)).one()
            row.name = new
            s.add(row)
    return result


def _specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]


def _fields(spec: Any) -> list[str]:
    """Every `field` an encoding names, anywhere in a Vega-Lite spec."""
    out = []
    if isinstance(spec, dict):
        if isinstance(spec.get("field"), str):
            out.append(spec["field"])
        for v in spec.values():
            out += _fields(v)
    elif isinstance(spec, list):
        for v in spec:
            out += _fields(v)
    return out


def test_pair_confusion_takes_any_annotator_names(lead_db: AppDB, seeded: Seeded) -> None:
    at = page_app(lead_db, "lena", "dashboard")
    at.query_params["campaign"] = "lead"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    pair = at.selectbox(key="dash-conf-pair")
    labels = list(pair.options)  # as shown
    # "a vs b" comes first: split on " vs ", its label named annotators "a" and "b vs ann...".
    wanted = f"{ODD['bob']} vs {ODD['alice']}"
    assert wanted in labels, labels
    pair.select_index(labels.index(wanted)).run()
    assert not at.exception, [e.value for e in at.exception]
    confusion = [s for s in _specs(at) if "against" in json.dumps(s.get("title", ""))]
    assert len(confusion) == 1
    spec = confusion[0]
    assert ODD["alice"] in json.dumps(spec["title"]) and ODD["bob"] in json.dumps(spec["title"])
    fields = set(_fields(spec))
    assert {"first", "second", "count"} <= fields
    assert not any("." in f or " vs " in f for f in fields), fields
    with Session(lead_db.engine) as s:
        assert s.exec(select(User).where(User.name == ODD["bob"])).one()
