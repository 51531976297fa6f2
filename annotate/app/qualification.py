"""The Label page's qualification parts: the banner, the feedback after each item, the verdict.

During a campaign's qualification every item is a control, so the banner and the feedback
give nothing away; after it, control items are served like any other and nothing here shows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from annotate import labeling
from annotate.app import render as view
from annotate.app.context import AppContext
from annotate.errors import AnnotateError
from annotate.schema import LabelSchema
from annotate.storage.models import Campaign


def state(ctx: AppContext, campaign: Campaign) -> labeling.Qualification | None:
    """The user's qualification in `campaign`, or None when the campaign has none."""
    if campaign.qualification_items <= 0:
        return None
    with ctx.session() as s:
        return labeling.qualification_state(session=s, user=ctx.user, campaign=campaign)


def banner(q: labeling.Qualification | None) -> None:
    """While qualifying: how far along, and what opens the campaign's items."""
    if q is None or not q.in_progress:
        return
    st.info(
        f"**Qualification**: item {q.done + 1} of {q.required}. After each item you see the "
        f"lead's labels and note. The campaign's items open when your mean credit reaches "
        f"{q.threshold:.0%}.",
        icon=":material/school:",
    )


def fetch(ctx: AppContext, campaign: Campaign, item_id: int) -> labeling.Feedback | None:
    """Feedback on the item just submitted, if it was one of the user's qualification items."""
    try:
        with ctx.session() as s:
            return labeling.qualification_feedback(
                session=s, user=ctx.user, campaign=campaign, item_id=item_id
            )
    except AnnotateError:
        return None


def _shown(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return str(value)


def show(schema: LabelSchema, fb: labeling.Feedback) -> None:
    """The lead's labels beside the user's, the lead's note, and the credit earned."""
    with st.container(key="qualification-feedback", border=True):
        st.markdown(
            f"**Feedback on item {view.plain(fb.name)}**: your credit "
            f"**{fb.credit:.2f}** · mean so far {fb.qualification.mean_credit or 0:.2f} "
            f"({fb.qualification.done} of {fb.qualification.required})"
        )
        rows = [
            {
                "Field": f.label,
                "The lead": _shown(fb.lead_labels.get(f.name)),
                "You": _shown(fb.your_labels.get(f.name)),
            }
            for f in schema.fields
            if f.name in fb.lead_labels or f.name in fb.your_labels
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        if fb.note:
            st.markdown("**The lead's note**")
            view.show_text(fb.note)


def closed(q: labeling.Qualification | None) -> bool:
    """When no item came: say why if it is the qualification; True if it was."""
    if q is None:
        return False
    if q.failed:
        st.warning(
            f"Your mean credit on the qualification items is {q.mean_credit or 0:.2f}, below "
            f"the {q.threshold:.2f} this campaign asks for, so its items stay closed. A lead "
            "can let you try again.",
            icon=":material/lock:",
        )
        return True
    if q.in_progress:
        st.info(
            f"Qualification: {q.done} of {q.required} items done, and no more qualification "
            "items are available. Tell the lead.",
            icon=":material/hourglass_empty:",
        )
        return True
    return False
