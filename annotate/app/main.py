"""The app's only entry point: who is signed in, and which pages their role sees.

Streamlit runs `entry/streamlit_app.py` on every rerun, which calls `main()` here; `annotate
serve` (server.py) is how it is started. Importing this module does nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from annotate.accounts import sessions
from annotate.accounts.auth import has_role
from annotate.app import context
from annotate.app.render import inert, plain
from annotate.errors import AnnotateError
from annotate.storage.models import User


@dataclass(frozen=True)
class PageSpec:
    """A page: what it is called, who may open it, and where its code is."""

    name: str
    title: str
    icon: str
    section: str
    role: str
    module: str = ""  # defaults to `name`
    function: str = "render"
    hidden: bool = False

    @property
    def module_name(self) -> str:
        """The module under annotate.app.pages holding the page."""
        return self.module or self.name


PAGES = (
    PageSpec("label", "Label", ":material/edit_note:", "Labeling", "annotator"),
    PageSpec("my_work", "My work", ":material/history:", "Labeling", "annotator"),
    PageSpec("review", "Review", ":material/rate_review:", "Lead", "lead"),
    PageSpec("dashboard", "Dashboard", ":material/monitoring:", "Lead", "lead"),
    PageSpec("models", "Models", ":material/leaderboard:", "Lead", "lead"),
    PageSpec("adjudicate", "Adjudicate", ":material/gavel:", "Lead", "lead", hidden=True),
    PageSpec("users", "Users", ":material/group:", "Admin", "admin", "admin", "render_users"),
    PageSpec(
        "campaigns", "Campaigns", ":material/folder:", "Admin", "admin", "admin", "render_campaigns"
    ),
)


def page_exists(module: str) -> bool:
    """Whether `annotate.app.pages.<module>` is installed (the lead pages may not be yet)."""
    return importlib.util.find_spec(f"annotate.app.pages.{module}") is not None


def pages_for(user: User) -> list[PageSpec]:
    """The pages `user`'s role sees, in navigation order, leaving out pages not written yet."""
    return [p for p in PAGES if has_role(user, p.role) and page_exists(p.module_name)]


# Where each role lands: leads and admins on their own page, so that signing in does not lease
# them an item (the Label page claims one as it opens).
LANDING = {"annotator": "label", "lead": "review", "admin": "campaigns"}


def landing_page(user: User, specs: list[PageSpec]) -> str | None:
    """The page `user` lands on: their role's own page, else the first one they may open."""
    names = [p.name for p in specs if not p.hidden]
    wanted = LANDING.get(user.role)
    if wanted in names:
        return wanted
    return names[0] if names else None


def _runner(spec: PageSpec, ctx_ref: list[context.AppContext]) -> Callable[[], None]:
    def run() -> None:
        module = importlib.import_module(f"annotate.app.pages.{spec.module_name}")
        with context.guard():
            getattr(module, spec.function)(ctx_ref[0])

    run.__name__ = f"page_{spec.name}"
    return run


def navigation(ctx: context.AppContext, specs: list[PageSpec]) -> Any:
    """st.navigation over `specs` (top bar); registers the pages in `ctx.pages` by name.

    Streamlit serves its default page at the root only (its own path answers "page not
    found"), so a landing page other than the first (Review, Campaigns) is reached from a
    hidden root page that switches to it: `/review` and `/campaigns` keep working.
    """
    ref = [ctx]
    visible: list[Any] = []
    registered: dict[str, Any] = {}
    landing = landing_page(ctx.user, specs)
    first = specs[0].name if specs else None
    for spec in specs:
        page = st.Page(
            _runner(spec, ref),
            title=spec.title,
            # No icon: Streamlit turns a page's Material icon into the favicon, fetched from
            # fonts.gstatic.com, and nothing may leave the machine.
            url_path=spec.name,
            default=spec.name == first and landing == first,
            visibility="hidden" if spec.hidden else "visible",
        )
        registered[spec.name] = page
        visible.append(page)
    if landing is not None and landing != first:

        def home() -> None:
            st.switch_page(registered[landing])

        visible.append(
            st.Page(home, title="annotate", url_path="home", default=True, visibility="hidden")
        )
    ref[0] = context.AppContext(
        settings=ctx.settings, engine=ctx.engine, user=ctx.user, pages=registered
    )
    return st.navigation(visible, position="top")


def sign_in_gate(why: str | None) -> None:
    """What someone who is not signed in sees (the server normally redirects them first)."""
    st.title("annotate")
    if why:
        # `why` can quote an identity provider's claim (an email): never let it be markdown.
        st.warning(inert(why), icon=":material/lock:")
    st.write("Sign in to label.")
    with st.container(horizontal=True):
        if st.button("Sign in with a password", type="primary", key="go-signin"):
            # st.logout() sends the browser to /auth/logout, which our server answers by
            # dropping any stale cookie and showing the sign-in page.
            st.logout()
        if context.oidc_configured() and st.button("Sign in with single sign-on", key="sso"):
            st.login()


def account(ctx: context.AppContext) -> None:
    """The sidebar's account box: who you are, and sign out."""
    with st.sidebar:
        st.caption(f"Signed in as {plain(ctx.user.name)} · {ctx.user.role}")
        if st.button("Sign out", key="signout", icon=":material/logout:"):
            with context.guard(), ctx.session() as s:
                sessions.sign_out(session=s, user=ctx.user)
            # Public API that sends the browser to /auth/logout; the server clears our cookie
            # there too (see server.py), then shows the sign-in page.
            st.logout()
            st.stop()


def main() -> None:
    """Run one script pass: resolve the user, then the page they asked for."""
    # No page_icon: a Material icon as favicon is fetched from fonts.gstatic.com.
    st.set_page_config(page_title="annotate", layout="wide")
    settings = context.load_settings()
    engine = context.get_engine(settings)
    try:
        user, why = context.current_user(settings, engine)
    except AnnotateError as exc:
        context.show_error(exc)
        return
    notice = st.session_state.pop(context.SESSION_NOTICE_KEY, None)
    if notice:
        st.warning(notice, icon=":material/sync_problem:")
    if user is None:
        sign_in_gate(why)
        return
    ctx = context.AppContext(settings=settings, engine=engine, user=user)
    nav = navigation(ctx, pages_for(user))
    account(ctx)
    nav.run()


if __name__ == "__main__":
    main()
