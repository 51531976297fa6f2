"""The dashboard's chart pieces: verdict colours, alpha thresholds, labelled heatmaps."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from annotate import review

# The first word of a row's reading decides its colour on the chart.
VERDICT_COLORS = {
    "reliable": "#2e7d32",
    "tentative": "#ef8f00",
    "uncertain": "#9e9d24",
    "unreliable": "#c62828",
    "other": "#757575",
}
THRESHOLDS = pd.DataFrame(
    {"alpha": [review.TENTATIVE, review.RELIABLE], "line": ["tentative", "reliable"]}
)


def heatmap(
    frame: pd.DataFrame,
    x: str,
    y: str,
    value: str,
    title: str,
    fmt: str,
    *,
    titles: tuple[str, str] | None = None,
) -> Any:
    """Cells of `value` over columns `x` and `y` (plain column names), axes titled `titles`."""
    x_title, y_title = titles or (x, y)
    base = alt.Chart(frame).encode(
        x=alt.X(f"{x}:N", sort=None, title=x_title),
        y=alt.Y(f"{y}:N", sort=None, title=y_title),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", title=value, scale=alt.Scale(scheme="blues")),
        tooltip=[
            alt.Tooltip(f"{x}:N", title=x_title),
            alt.Tooltip(f"{y}:N", title=y_title),
            alt.Tooltip(f"{value}:Q", format=fmt),
        ],
    )
    # Dark cells get white text: the threshold is half the largest value shown.
    middle = float(frame[value].max() or 0) / 2
    text = base.mark_text(baseline="middle").encode(
        text=alt.Text(f"{value}:Q", format=fmt),
        color=alt.condition(f"datum['{value}'] > {middle}", alt.value("white"), alt.value("#333")),
    )
    return (rect + text).properties(title=title)
