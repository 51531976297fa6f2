"""Safe display of untrusted model text: formatting kept, nothing executed, loaded or linked.

Prompts and responses come from models and from whoever wrote the eval: they may carry
`<script>`, `<img onerror=...>`, tracking pixels and `javascript:` links. Streamlit's
`st.markdown` drops raw HTML but still renders markdown images and links, and its parser is not
ours, so a text-level rewrite could disagree with it about what is a link. Instead the text is
parsed once, here, with markdown-it (CommonMark, tables, strikethrough; raw HTML escaped, no
linkify), and rendered to HTML in which an image becomes a placeholder naming its URL and a
link becomes its text followed by its URL as code: nothing clickable, nothing fetched. The
result goes to `st.html` without JavaScript (Streamlit sanitizes it again with DOMPurify).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import streamlit as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

MAX_CHARS = 100_000
ROLES = {"user": "user", "assistant": "assistant", "system": "system"}
STYLE = """<style>
.annotate-text { line-height: 1.55; overflow-wrap: anywhere; }
.annotate-text p { margin: 0 0 0.6em 0; }
.annotate-text pre { background: rgba(128,128,128,0.12); padding: 0.6em 0.8em;
  border-radius: 0.4em; overflow-x: auto; white-space: pre; }
.annotate-text code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
  font-size: 0.9em; background: rgba(128,128,128,0.12); padding: 0.05em 0.25em;
  border-radius: 0.25em; }
.annotate-text pre code { background: none; padding: 0; }
.annotate-text blockquote { border-left: 3px solid rgba(128,128,128,0.4); margin: 0 0 0.6em 0;
  padding-left: 0.8em; color: inherit; opacity: 0.85; }
.annotate-text table { border-collapse: collapse; margin-bottom: 0.6em; }
.annotate-text th, .annotate-text td { border: 1px solid rgba(128,128,128,0.35);
  padding: 0.2em 0.5em; }
.annotate-neutralized { opacity: 0.8; font-style: italic; }
</style>"""


def _image(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    alt = "".join(child.content for child in token.children or [])
    src = str(token.attrGet("src") or "")
    label = f"image {html.escape(alt)!s}: " if alt else "image: "
    return (
        f'<span class="annotate-neutralized">[{label}<code>{html.escape(src)}</code>'
        " — not loaded]</span>"
    )


def _link_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    auto = token.markup == "autolink"
    env.setdefault("links", []).append((str(token.attrGet("href") or ""), auto))
    # An autolink's text is its URL: show it once, as code.
    return '<span class="annotate-neutralized"><code>' if auto else '<span class="annotate-link">'


def _link_close(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    href, auto = env["links"].pop() if env.get("links") else ("", False)
    if auto:
        return "</code></span>"
    return f' <span class="annotate-neutralized">(<code>{html.escape(href)}</code>)</span></span>'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    # Accept every URL as a link so that `javascript:` and `data:` links are shown (as text)
    # the same way as the others instead of being left as half-parsed brackets.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    return md


@lru_cache(maxsize=512)
def safe_html(text: str) -> str:
    """HTML for untrusted markdown `text`: no raw HTML, no images, no links, no scripts.

    Formatting (emphasis, lists, tables, headings, quotes, code blocks) is kept; text longer
    than MAX_CHARS is cut with a note saying so.
    """
    cut = ""
    if len(text) > MAX_CHARS:
        cut = (
            f'<p class="annotate-neutralized">[{len(text) - MAX_CHARS:,} more characters not '
            "shown]</p>"
        )
        text = text[:MAX_CHARS]
    rendered = _parser().render(text, {})
    return f'<div class="annotate-text">{rendered}{cut}</div>'


def show_styles() -> None:
    """Add the stylesheet for rendered text (once per page run; it takes no space)."""
    st.html(STYLE)


def show_text(text: str) -> None:
    """Display untrusted markdown `text` safely."""
    st.html(safe_html(text))


def show_item(item: Any, *, response_label: str = "Response") -> None:
    """An item as chat bubbles: the prompt or conversation, then the response to label."""
    show_styles()
    turns: list[dict[str, Any]] = item.conversation or []
    if turns:
        for turn in turns:
            role = ROLES.get(str(turn.get("role")), "user")
            with st.chat_message(role):
                show_text(str(turn.get("content", "")))
    elif item.prompt is not None:
        with st.chat_message("user"):
            show_text(item.prompt)
    with st.chat_message("assistant"):
        st.caption(response_label)
        show_text(item.response)


# Markdown that fetches, links or injects when Streamlit renders an alert or a caption.
_ACTIVE = {"image", "link_open", "html_inline", "html_block"}
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_BARE_URL = re.compile(r"(?i)\b(?:https?://|ftp://|mailto:|www\.)")


def inert(text: str) -> str:
    """`text` for markdown elements (st.error and the like) with nothing active left in it.

    Messages quote names in code spans; a quoted value that closes its span early could add
    an image, a link or HTML. Text without such constructs is returned unchanged; otherwise
    every ASCII punctuation character is backslash-escaped, so it shows exactly as typed.
    """
    for block in _parser().parse(text):
        children = block.children or []
        if (
            block.type in _ACTIVE
            or any(t.type in _ACTIVE for t in children)
            # Streamlit's markdown turns a bare URL into a link (GFM autolinks; our parser
            # has linkify off); escaped, `http\://...` stays text.
            or any(t.type == "text" and _BARE_URL.search(t.content) for t in children)
        ):
            return _PUNCTUATION.sub(r"\\\1", text)
    return text


def plain(value: Any) -> str:
    """`value` escaped for a markdown context (captions, labels): shown, never interpreted."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    if not text:
        return "` `"
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
