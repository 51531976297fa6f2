"""The dashboard's charts: verdict colours, alpha thresholds, labelled heatmaps, and `show`,
which keeps each chart's Vega-Lite spec beside the figure it is drawn from.

Building an Altair chart and validating its spec took about half of a warm dashboard load at
100,000 items (0.5 s of CPU, more than the page's own budget). A chart depends only on a kept
figure (`warm_figures`), which stays the same object while it is served, so its spec is built
once per figure and sent as it is on later loads.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd
from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec

from annotate import review

# Specs kept per process (a dashboard shows six charts per field and filter).
MAX_SPECS = 64
_SPECS: OrderedDict[tuple[int, str], tuple[object, dict[str, Any]]] = OrderedDict()
_LOCK = threading.Lock()

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


def show(where: Any, source: object, name: str, build: Callable[[], Any], *, height: int) -> None:
    """`where.altair_chart(build())` (full width), with the Vega-Lite spec kept while `source`,
    the figure the chart is drawn from, is the same object (`name` tells its charts apart;
    anything else the chart shows must follow from `source`)."""
    slot = (id(source), name)
    with _LOCK:
        kept = _SPECS.get(slot)
        spec = kept[1] if kept is not None and kept[0] is source else None
    if spec is None:
        # As st.altair_chart converts it (data as Arrow datasets, Streamlit's theme).
        spec = _convert_altair_to_vega_lite_spec(build())
        with _LOCK:
            _SPECS[slot] = (source, spec)  # holding `source` keeps its id from being reused
            _SPECS.move_to_end(slot)
            while len(_SPECS) > MAX_SPECS:
                _SPECS.popitem(last=False)
    # A copy: Streamlit moves the datasets out of the spec it is given.
    where.vega_lite_chart(spec=copy.deepcopy(spec), width="stretch", height=height)


def alpha_chart(defined: pd.DataFrame) -> Any:
    """Alpha per measure with its interval, coloured by reading, over the thresholds."""
    base = alt.Chart(defined).encode(
        y=alt.Y("measure:N", sort=None, title=None),
        tooltip=["measure", "alpha", "ci_low", "ci_high", "n_units", "reading"],
    )
    bars = base.mark_rule().encode(x=alt.X("ci_low:Q", title="alpha"), x2="ci_high:Q")
    points = base.mark_point(filled=True, size=60).encode(
        x="alpha:Q",
        color=alt.Color(
            "colour:N",
            scale=alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values())),
            legend=alt.Legend(title="Reading", orient="bottom", labelLimit=400),
        ),
    )
    rules = alt.Chart(THRESHOLDS).mark_rule(strokeDash=[4, 4]).encode(x="alpha:Q")
    return rules + bars + points


def time_chart(frame: pd.DataFrame, by: str) -> Any:
    """Alpha per period (`by`: day or batch), one line per measure, over the thresholds."""
    lines = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("period:N", sort=None, title="Day" if by == "day" else "Batch (in time order)"),
            y=alt.Y("alpha:Q", title="alpha"),
            color=alt.Color("measure:N", title="Measure"),
            tooltip=["period", "measure", alt.Tooltip("alpha:Q", format=".3f"), "n_items"],
        )
    )
    rules = alt.Chart(THRESHOLDS).mark_rule(strokeDash=[4, 4]).encode(y="alpha:Q")
    return rules + lines
