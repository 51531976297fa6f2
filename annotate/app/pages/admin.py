"""Admin: users (add, role, sign-in, password) and campaigns (create, members, import, progress,
what annotators may see of each item).

Every action goes through a core function that checks the admin role itself.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from annotate import intake, labeling, storage
from annotate.accounts.auth import require_role
from annotate.app.context import AppContext, show_error
from annotate.app.render import inert
from annotate.errors import AnnotateError, ImportProblem
from annotate.schema import DEFAULT_SCHEMA, resolve_schema
from annotate.storage.models import ROLES, Campaign

IMPORT_TYPES = ["csv", "tsv", "jsonl", "parquet"]
# What the last import did, shown once after the rerun that redraws the campaigns table.
FLASH = "admin-import-done"


def render(ctx: AppContext) -> None:
    """Both admin sections, in tabs (the navigation shows them as two pages)."""
    users, campaigns = st.tabs(["Users", "Campaigns"])
    with users:
        render_users(ctx)
    with campaigns:
        render_campaigns(ctx)


# -- users -------------------------------------------------------------------------------------


def render_users(ctx: AppContext) -> None:
    """List users, add one, change a role, allow or stop sign-in, set a password."""
    with ctx.session() as s:
        users = storage.list_users(session=s, actor=ctx.user)
    st.dataframe(
        [
            {
                "name": u.name,
                "role": u.role,
                "can sign in": bool(u.password_hash) and u.active and not u.is_machine,
                "active": u.active,
                "automatic judge": u.is_machine,
                "since": u.created_at.strftime("%Y-%m-%d"),
            }
            for u in users
        ],
        hide_index=True,
        width="stretch",
    )
    left, right = st.columns(2, gap="large")
    # A failed attempt keeps what was typed (the form is not cleared on submit); a successful
    # one starts a new, empty form under the next key.
    added = st.session_state.setdefault("admin-users-added", 0)
    with left, st.form(f"add-user-{added}"):
        st.subheader("Add a user")
        name = st.text_input("User name")
        role = st.selectbox("Role", ROLES)
        password = st.text_input("Password", type="password", help="At least 8 characters")
        if st.form_submit_button("Add user", type="primary"):
            try:
                with ctx.session() as s:
                    storage.add_user(
                        session=s, actor=ctx.user, name=name, role=role, password=password
                    )
            except AnnotateError as exc:
                show_error(exc)
            else:
                st.toast(f"Added {name.strip()} ({role})")
                st.session_state["admin-users-added"] = added + 1
                st.rerun()
    with right:
        st.subheader("Change a user")
        people = [u.name for u in users if not u.is_machine]
        if not people:
            return
        who = st.selectbox("User", people, key="admin-user")
        target = next(u for u in users if u.name == who)
        with st.form("change-user"):
            role = st.selectbox("Role", ROLES, index=ROLES.index(target.role))
            active = st.toggle("May sign in", value=target.active)
            password = st.text_input("New password (leave empty to keep)", type="password")
            if st.form_submit_button("Save"):
                try:
                    with ctx.session() as s:
                        if role != target.role:
                            storage.set_role(session=s, actor=ctx.user, name=who, role=role)
                        if active != target.active:
                            storage.set_active(session=s, actor=ctx.user, name=who, active=active)
                        if password:
                            storage.set_password(
                                session=s, actor=ctx.user, name=who, password=password
                            )
                except AnnotateError as exc:
                    show_error(exc)
                else:
                    st.toast(f"Saved {who}")
                    st.rerun()


# -- campaigns ---------------------------------------------------------------------------------


def render_campaigns(ctx: AppContext) -> None:
    """Progress of every campaign, then create one, or manage the one selected."""
    # Leads may read campaign progress elsewhere, but this page is the admin's: reached
    # directly, it shows a lead nothing rather than a half-drawn page.
    require_role(ctx.user, "admin", "manage campaigns")
    with ctx.session() as s:
        campaigns = storage.list_campaigns(session=s, actor=ctx.user)
        status = [
            storage.campaign_status(session=s, actor=ctx.user, campaign=c).model_dump()
            for c in campaigns
        ]
    if status:
        st.dataframe(
            [
                {
                    "campaign": row["campaign"],
                    "schema": row["schema_id"],
                    "k": row["overlap"],
                    "items": row["items"],
                    "complete": row["complete_items"],
                    "progress": row["complete_items"] / row["items"] if row["items"] else 0.0,
                    "labels": row["annotations"],
                    "annotators": row["annotators"],
                    "flagged": row["flagged"],
                }
                for row in status
            ],
            column_config={
                "progress": st.column_config.ProgressColumn(
                    "progress", min_value=0.0, max_value=1.0, format="percent"
                )
            },
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No campaigns yet: create the first one below.")
    # Always a slot here, filled or not: an element appearing above the tabs would make them
    # new tabs, and the browser would show the first one instead of the one in use.
    slot = st.empty()
    done = st.session_state.pop(FLASH, None)
    if done:
        slot.success(done)
    create, manage = st.tabs(["Create a campaign", "Manage a campaign"])
    with create:
        _create_form(ctx)
    with manage:
        if campaigns:
            names = [c.name for c in campaigns]
            chosen = st.selectbox("Campaign", names, key="admin-campaign")
            _manage(ctx, campaigns[names.index(chosen)])


def _schema_ids(directory: Path) -> list[str]:
    """Schema ids in `directory`, the default (refusal-v2) first so that it is preselected."""
    found = sorted(p.stem for p in directory.glob("*") if p.suffix in {".yaml", ".yml", ".json"})
    ids = [s for s in found if not s.endswith(".schema")] or [DEFAULT_SCHEMA]
    return sorted(ids, key=lambda s: s != DEFAULT_SCHEMA)


def _annotator_names(ctx: AppContext) -> list[str]:
    with ctx.session() as s:
        return [
            u.name
            for u in storage.list_users(session=s, actor=ctx.user)
            if not u.is_machine and u.active
        ]


def _create_form(ctx: AppContext) -> None:
    with st.form("create-campaign"):
        name = st.text_input("Name", help="Letters, digits, dashes; no `/`")
        schema_id = st.selectbox("Label schema", _schema_ids(ctx.settings.schemas_dir))
        overlap = st.number_input("Annotators per item (k)", min_value=1, max_value=50, value=2)
        guidelines = st.text_area("Guidelines (markdown)", height=160)
        members = st.multiselect(
            "Restrict to these annotators (empty: open to every annotator)",
            _annotator_names(ctx),
        )
        seed = st.text_input("Seed of the item order (empty: random)")
        if not st.form_submit_button("Create campaign", type="primary"):
            return
    try:
        seed_value = int(seed) if seed.strip() else None
    except ValueError:
        st.error(f"Seed `{seed}` is not a whole number")
        return
    try:
        schema = resolve_schema(schema_id, ctx.settings.schemas_dir)
        with ctx.session() as s:
            campaign = storage.create_campaign(
                session=s,
                actor=ctx.user,
                name=name,
                schema=schema,
                overlap=int(overlap),
                guidelines=guidelines,
                members=members,
                seed=seed_value,
            )
    except AnnotateError as exc:
        show_error(exc)
        return
    st.toast(f"Created campaign {campaign.name}")
    st.rerun()


def _manage(ctx: AppContext, campaign: Campaign) -> None:
    with ctx.session() as s:
        members = storage.campaign_members(session=s, actor=ctx.user, campaign=campaign)
    st.subheader("Import items")
    _import_form(ctx, campaign)
    st.subheader("Settings")
    with st.form(f"settings-{campaign.id}"):
        overlap = st.number_input(
            "Annotators per item (k)", min_value=1, max_value=50, value=campaign.overlap
        )
        guidelines = st.text_area("Guidelines (markdown)", value=campaign.guidelines, height=160)
        chosen = st.multiselect(
            "Restricted to (empty: open to every annotator)",
            sorted(set(_annotator_names(ctx)) | set(members)),
            default=members,
        )
        if st.form_submit_button("Save settings"):
            try:
                with ctx.session() as s:
                    fresh = storage.get_campaign(session=s, name=campaign.name)
                    storage.update_campaign(
                        session=s,
                        actor=ctx.user,
                        campaign=fresh,
                        guidelines=guidelines,
                        overlap=int(overlap),
                    )
                    if sorted(chosen) != members:
                        storage.set_members(
                            session=s, actor=ctx.user, campaign=fresh, members=chosen
                        )
            except AnnotateError as exc:
                show_error(exc)
            else:
                st.toast(f"Saved {campaign.name}")
                st.rerun()
    st.subheader("What annotators see")
    _visible_form(ctx, campaign)
    if campaign.guidelines.strip():
        with st.expander("Guidelines as annotators see them"):
            st.markdown(campaign.guidelines)
    st.subheader("Leases")
    if st.button("Release lapsed leases", key=f"expire-{campaign.id}"):
        try:
            with ctx.session() as s:
                n = labeling.expire_leases(session=s, actor=ctx.user, campaign=campaign)
        except AnnotateError as exc:
            show_error(exc)
        else:
            st.toast(f"{n} lapsed leases marked expired")


def _visible_form(ctx: AppContext, campaign: Campaign) -> None:
    """The keys annotators may see besides the text and the item's handle (none by default)."""
    with ctx.session() as s:
        known = storage.metadata_keys(session=s, actor=ctx.user, campaign=campaign)
    current = list(campaign.visible_metadata or [])
    with st.form(f"visible-{campaign.id}"):
        chosen = st.multiselect(
            "Keys annotators may see (empty: the prompt, the response and an opaque handle "
            "only; leads see everything)",
            [*known, *(k for k in current if k not in known)],
            default=current,
            key=f"admin-visible-{campaign.id}",
        )
        if not st.form_submit_button("Save what annotators see"):
            return
    try:
        with ctx.session() as s:
            fresh = storage.get_campaign(session=s, name=campaign.name)
            storage.set_visible_metadata(session=s, actor=ctx.user, campaign=fresh, keys=chosen)
    except AnnotateError as exc:
        show_error(exc)
        return
    shown = ", ".join(chosen) if chosen else "the text and a handle only"
    st.toast(f"Annotators of {campaign.name} now see {shown}")
    st.rerun()


def _import_form(ctx: AppContext, campaign: Campaign) -> None:
    # The form keeps the file and the choices after a refused import, so that the lead can drop
    # the columns named and import again; after an import a new, empty form takes its place.
    state = f"import-{campaign.id}"
    round_ = st.session_state.setdefault(f"{state}-round", 0)
    label_like = st.session_state.get(f"{state}-label-like", [])
    with st.form(f"{state}-{round_}"):
        upload = st.file_uploader("Items file", type=IMPORT_TYPES)
        columns = st.text_area(
            "Column mapping (optional), one FIELD=COLUMN per line",
            placeholder="prompt=question\nresponse=answer",
            height=80,
        )
        constants = st.text_area(
            "Fixed values (optional), one FIELD=VALUE per line",
            placeholder="model=model-a",
            height=68,
        )
        drop = st.multiselect(
            "Drop columns",
            label_like,
            help="Columns to leave out of the items. A file with label-like columns is "
            "refused, and they are listed here: drop them, or import them as labels with "
            "`annotate import-labels`.",
        )
        submitted = st.form_submit_button("Import", type="primary")
    if not submitted:
        refused = st.session_state.get(f"{state}-refused")
        if refused:
            st.error(refused)
        return
    st.session_state.pop(f"{state}-refused", None)
    if upload is None:
        st.error("Choose a file to import")
        return
    filename = Path(upload.name).name
    with tempfile.TemporaryDirectory(prefix="annotate-upload-") as tmp:
        path = Path(tmp) / filename
        path.write_bytes(upload.getvalue())
        try:
            cmap = intake.ColumnMap.build(_lines(columns), _lines(constants), None, drop=drop)
            records = intake.parse_items(path, cmap)
            with ctx.session() as s:
                intake.refuse_label_columns(
                    filename,
                    records,
                    storage.campaign_schema(session=s, campaign=campaign),
                    campaign=campaign.name,
                )
                result = storage.import_items(
                    session=s,
                    actor=ctx.user,
                    campaign=campaign,
                    records=records,
                    source=filename,
                )
        except ImportProblem as exc:
            # Messages name the uploaded file, not our temporary copy of it.
            problems = [p.replace(str(path), filename) for p in exc.problems]
            st.error(
                f"Nothing was imported: {len(problems)} problem(s).\n\n"
                # Problems quote the file's own text (column names, values): shown, not run.
                + "\n".join(f"- {inert(' '.join(p.splitlines()))}" for p in problems[:50])
            )
            return
        except intake.LabelColumns as exc:
            # Redraw the form offering the columns to drop; the message stays below it.
            offered = list(dict.fromkeys([*label_like, *exc.columns]))
            st.session_state[f"{state}-label-like"] = offered
            st.session_state[f"{state}-refused"] = inert(str(exc))
            st.rerun()
        except AnnotateError as exc:
            show_error(exc)
            return
    st.session_state[FLASH] = (
        f"Imported {result.added} items into {campaign.name} ({result.unchanged} already there)"
    )
    st.session_state[f"{state}-round"] = round_ + 1
    st.session_state.pop(f"{state}-label-like", None)
    st.rerun()


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]
