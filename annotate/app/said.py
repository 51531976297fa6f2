"""What the annotators said about an item, for the Adjudicate page: side by side, and the
item's adjudication history."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from annotate.app import render as view
from annotate.review.adjudication import ItemDetail
from annotate.schema import LabelSchema

EXTRA_ROWS = {"Seconds", "Flagged", "Rule warnings", "Labeled at (UTC)"}


def side_by_side(schema: LabelSchema, detail: ItemDetail) -> None:
    """One column per annotator, one row per field; values outside the majority are marked."""
    people = detail.annotations
    if not people:
        st.caption("Nobody has labeled this item yet.")
        return
    names = [p.annotator + (" (judge)" if p.is_machine else "") for p in people]
    rows: dict[str, list[str]] = {}
    for spec in schema.choice_fields:
        rows[spec.label] = [_shown(spec.kind, p.labels.get(spec.name)) for p in people]
    rows["Seconds"] = [f"{p.duration_s:.0f}" if p.duration_s is not None else "–" for p in people]
    rows["Flagged"] = ["yes" if p.flagged else "" for p in people]
    rows["Rule warnings"] = [str(len(p.warnings)) if p.warnings else "" for p in people]
    rows["Labeled at (UTC)"] = [f"{p.updated_at:%Y-%m-%d %H:%M}" for p in people]
    frame = pd.DataFrame(rows, index=names).T
    humans = [n for n, p in zip(names, people, strict=True) if not p.is_machine]
    st.dataframe(
        frame.style.apply(_minority, humans=humans, fields=set(rows) - EXTRA_ROWS, axis=1),
        key="adj-side-by-side",
        width="stretch",
    )
    for name, person in zip(names, people, strict=True):
        notes = []
        if person.flagged:
            notes.append("flagged" + (f": {person.flag_note}" if person.flag_note else ""))
        for warning in person.warnings:
            overridden = " (overridden)" if warning.rule in person.overridden_rules else ""
            notes.append(f"rule: {warning.message}{overridden}")
        if not notes and not person.rationale:
            continue
        with st.container(border=True):
            st.markdown(f"**{view.plain(name)}**")
            for note in notes:
                view.show_text(note)
            if person.rationale:
                st.caption("Rationale")
                view.show_text(person.rationale)


def _shown(kind: str, value: Any) -> str:
    if kind == "multi":
        if value is None:
            return "–"
        return ", ".join(value) if value else "fine (none ticked)"
    return str(value) if value else "–"


def _minority(row: pd.Series, *, humans: list[str], fields: set[str]) -> list[str]:
    """Shade the human values of a field that differ from its most common human value."""
    values = [row[h] for h in humans if row[h] != "–"]
    if row.name not in fields or len(set(values)) <= 1:
        return [""] * len(row)
    modes = pd.Series(values).mode()
    # With a tie there is no majority to differ from: every human value is shaded.
    top = modes.iloc[0] if len(modes) == 1 else None
    return [
        "background-color: rgba(239, 143, 0, 0.22)"
        if name in humans and v not in ("–", top)
        else ""
        for name, v in row.items()
    ]


def history(detail: ItemDetail) -> None:
    """The item's adjudications, newest first, in an expander (nothing when there are none)."""
    if not detail.history:
        return
    with st.expander(f"Adjudication history ({len(detail.history)})"):
        for record in detail.history:
            current = " · current" if record.is_current else ""
            band = ", ".join(f"{a} {c:g}" for a, c in record.band.items())
            st.markdown(
                f"**{view.plain(record.lead)}** · {record.created_at:%Y-%m-%d %H:%M:%S} UTC · "
                f"{record.method}{current}  \n"
                f"right action {view.plain(record.labels.get('right_action'))} · band "
                f"{view.plain(band)}"
                + (" · guideline gap" if record.guideline_gap else "")
                + (" · overrides the majority" if record.overrides_majority else "")
                + (
                    f" · disagreement: {view.plain(record.disagreement_cause)}"
                    if record.disagreement_cause
                    else ""
                )
            )
            if record.note:
                st.caption(view.plain(record.note))
