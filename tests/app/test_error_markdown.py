"""Error messages are shown as typed: a crafted URL value cannot make `st.error` draw an image.

`st.error` renders markdown, and error messages quote what the user asked for (``No item
`x` ...``). A value that closes the code span could smuggle in an image or a link; the app's
alerts must show such text literally while keeping ordinary messages as they were.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from annotate.app import render
from annotate.errors import NotFound
from annotate.schema import LabelSchema
from tests.test_app_support import AppDB, app_db_fixture, page_app, texts

CRAFTED = [
    "x` ![](http://remote.invalid/pixel.png) `y",
    "![pixel](http://remote.invalid/pixel.png)",
    "x` [click](javascript:alert(1)) `",
    "x` <img src=http://remote.invalid/i.png> `",
    "x`` ` ``![a](http://remote.invalid/a.png)",
]


def active_tokens(markdown: str) -> list[str]:
    """Markdown constructs in `markdown` that would load or link something when rendered."""
    found = []
    for block in render._parser().parse(markdown):
        for token in block.children or []:
            if token.type in ("image", "link_open", "html_inline"):
                found.append(token.type)
        if block.type == "html_block":
            found.append(block.type)
    return found


@pytest.fixture
def app_db(db_url: str, monkeypatch: pytest.MonkeyPatch, schema: LabelSchema) -> Iterator[AppDB]:
    yield from app_db_fixture(db_url, monkeypatch, schema)


@pytest.mark.parametrize("value", [CRAFTED[0], CRAFTED[-1]])
@pytest.mark.parametrize("param", ["item", "campaign"])
def test_a_crafted_query_value_renders_no_image(app_db: AppDB, param: str, value: str) -> None:
    at = page_app(app_db, "lena", "adjudicate")
    at.query_params["campaign"] = "demo"
    at.query_params[param] = value
    at.run()
    assert not at.exception
    errors = texts(at.error)
    assert errors, "the crafted value should have been refused with a message"
    for message in errors:
        assert active_tokens(message) == [], message
    # The person still reads what they asked for (escaped, not dropped).
    shown = " ".join(visible(m) for m in errors)
    assert "remote.invalid" in shown or "javascript:alert(1)" in shown


def test_the_check_itself_sees_images_in_the_raw_message() -> None:
    raw = str(NotFound(f"No item `{CRAFTED[0]}` in campaign `demo`"))
    assert active_tokens(raw) == ["image"]


@pytest.mark.parametrize(
    "message",
    [
        "No item `it-07` in campaign `demo`",
        "`lena` (lead) may not list users: it needs the admin role",
        "file.csv:3: field `id`: item `a` is already in campaign `c` with different content\n"
        "file.csv:4: field `id`: item `b` is already in campaign `c` with different content",
    ],
)
def test_ordinary_messages_are_left_as_they_were(message: str) -> None:
    assert render.inert(message) == message


@pytest.mark.parametrize("value", CRAFTED)
def test_inert_keeps_every_character_visible(value: str) -> None:
    message = f"No item `{value}` in campaign `demo`"
    safe = render.inert(message)
    assert active_tokens(safe) == []
    # Rendered back to text, the reader sees exactly the original characters.
    rendered = render._parser().render(safe)
    assert "<img" not in rendered and "<a " not in rendered
    assert "remote.invalid" in visible(safe) or "javascript:alert(1)" in visible(safe)


def visible(markdown: str) -> str:
    """The text a reader sees once `markdown` is rendered."""
    return html.unescape(re.sub(r"<[^>]+>", "", render._parser().render(markdown)))


@pytest.mark.parametrize(
    "message",
    [
        "No annotate user for `x`: see http://remote.invalid/x",
        "No annotate user for www.remote.invalid: ask an admin",
        "Unknown user mailto:someone@remote.invalid",
    ],
)
def test_bare_urls_are_escaped_so_streamlit_does_not_link_them(message: str) -> None:
    safe = render.inert(message)
    assert safe != message
    # No scheme or www. is left contiguous for GFM's autolinks to find...
    assert not re.search(r"(?i)(https?://|mailto:|www\.)", safe)
    # ...and the reader still sees every character.
    assert visible(safe).strip() == message


def test_urls_inside_code_spans_are_left_alone() -> None:
    message = "No item `http://remote.invalid/x` in campaign `demo`"
    assert render.inert(message) == message
