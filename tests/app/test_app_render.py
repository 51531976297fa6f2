"""Safe rendering of untrusted model text: table-driven cases and a hypothesis invariant."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate.app.render import MAX_CHARS, plain, safe_html

ALLOWED_TAGS = {
    "div", "p", "span", "code", "pre", "em", "strong", "s", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRS = {"class", "start", "style"}


class TagAudit(HTMLParser):
    """Collects every tag and attribute the browser would create."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.classes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attrs.add(name)
            if name == "class" and value:
                self.classes.update(value.split())
            if name == "style":
                # Table alignment only (markdown-it writes `text-align:` for aligned columns).
                assert value is not None and value.startswith("text-align:")


def audit(text: str) -> TagAudit:
    parser = TagAudit()
    parser.feed(safe_html(text))
    parser.close()
    return parser


HOSTILE = [
    "<script>window.pwned = 1</script>",
    '<img src=x onerror="window.pwned = 1">',
    "[click me](javascript:window.pwned=1)",
    "![](http://remote.invalid/pixel.png)",
    '![tracker](http://remote.invalid/p.gif "t")',
    "[ref link][r]\n\n[r]: http://remote.invalid/track",
    "![ref image][i]\n\n[i]: http://remote.invalid/i.png",
    "<http://remote.invalid/autolink>",
    "<a href='http://remote.invalid'>x</a>",
    "<iframe src='http://remote.invalid'></iframe>",
    "<svg onload=alert(1)>",
    '<div style="background:url(http://remote.invalid/bg.png)">x</div>',
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](<javascript:alert(1)>)",
    "| a | b |\n|---|---|\n| ![](http://remote.invalid/t.png) | [l](http://remote.invalid) |",
    "> quote ![](http://remote.invalid/q.png)",
    "- item [l](http://remote.invalid)\n  - nested ![](http://remote.invalid/n.png)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markup_creates_no_active_element(text: str) -> None:
    found = audit(text)
    assert found.tags <= ALLOWED_TAGS, found.tags - ALLOWED_TAGS
    assert found.attrs <= ALLOWED_ATTRS, found.attrs - ALLOWED_ATTRS


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<script>x()</script>", "&lt;script&gt;x()&lt;/script&gt;"),
        (
            "![pixel](http://remote.invalid/p.png)",
            "[image pixel: <code>http://remote.invalid/p.png",
        ),
        (
            "[docs](https://example.org/a?b=1&c=2)",
            "(<code>https://example.org/a?b=1&amp;c=2</code>)",
        ),
        ("[x](javascript:alert(1))", "<code>javascript:alert(1)</code>"),
        ("<https://example.org>", "<code>https://example.org</code>"),
    ],
)
def test_neutralized_things_stay_visible_as_text(text: str, shown: str) -> None:
    assert shown in safe_html(text)


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("**bold**", "<strong>bold</strong>"),
        ("*it*", "<em>it</em>"),
        ("~~gone~~", "<s>gone</s>"),
        ("# Title", "<h1>Title</h1>"),
        ("- a\n- b", "<li>a</li>"),
        ("1. a\n2. b", "<ol>"),
        ("> said", "<blockquote>"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "<td>1</td>"),
        ("```python\nprint('<b>')\n```", "<pre><code class=\"language-python\">print('&lt;b&gt;')"),
        ("    indented code <x>", "<pre><code>indented code &lt;x&gt;"),
        ("inline `a<b` code", "<code>a&lt;b</code>"),
    ],
)
def test_markdown_formatting_is_kept(text: str, tag: str) -> None:
    assert tag in safe_html(text)


def test_long_text_is_cut_with_a_note() -> None:
    out = safe_html("a" * (MAX_CHARS + 10))
    assert "[10 more characters not shown]" in out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "![",
                    "](",
                    "[",
                    "]",
                    "(",
                    ")",
                    "<",
                    ">",
                    "`",
                    "```",
                    "\n",
                    "\n\n",
                    "|",
                    "http://",
                    "javascript:",
                    "<img src=x onerror=f()>",
                    "<script>",
                    "[r]: http://x",
                    "    ",
                    "> ",
                    "- ",
                    "*",
                    "_",
                    "&",
                    "&lt;",
                    "\\",
                    '"',
                    "'",
                ]
            ),
        ),
        max_size=40,
    ).map("".join)
)
def test_no_text_produces_an_active_element(text: str) -> None:
    found = audit(text)
    assert found.tags <= ALLOWED_TAGS
    assert found.attrs <= ALLOWED_ATTRS


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "`abc`"), ("a`b", "``a`b``"), ("`x`", "`` `x` ``"), ("", "` `")],
)
def test_plain_wraps_values_in_a_code_span(value: str, expected: str) -> None:
    assert plain(value) == expected
