"""Models page (leads): score uploaded prediction files against a release, as `annotate score`.

The lead picks a published release (a folder under `Settings.exports_dir`), uploads one or more
prediction files (`{id, action}` records, or judged responses that also carry
`failure_categories`/`leaked`, `answer_quality`, `refusal_style`), and sees the same report the
CLI prints: the text table, the buckets and comparisons as tables, and the three plots. The
report comes from `scoring.predictions.score_uploads`, which runs `score_release` itself, so the
page and `annotate score --json` cannot drift; the JSON is offered for download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from annotate.accounts.auth import require_role
from annotate.app.context import AppContext
from annotate.app.render import plain
from annotate.release.folders import release_folders
from annotate.scoring.buckets import BUCKETS
from annotate.scoring.plots import bucket_bars, epistemic_frontier, normative_frontier
from annotate.scoring.predictions import score_uploads
from annotate.scoring.score import ScoreReport
from annotate.scoring.text import report_lines
from annotate.storage.releases import dumps

REPORT_KEY = "annotate.models.report"
UPLOAD_KEY = "models-files"
FILE_TYPES = ["jsonl", "json", "csv", "tsv", "parquet"]


def uploaded_files() -> list[tuple[str, bytes]]:
    """The files the lead uploaded, as (file name, contents)."""
    files = st.file_uploader(
        "Prediction files (one per model; the model is named by the file name)",
        type=FILE_TYPES,
        accept_multiple_files=True,
        key=UPLOAD_KEY,
    )
    return [(f.name, f.getvalue()) for f in files or []]


def bucket_frame(report: ScoreReport) -> pd.DataFrame:
    """One row per error bucket, per model: rate, numerator/denominator and interval."""
    rows: list[dict[str, Any]] = []
    for name, m in report.models.items():
        for bucket in BUCKETS:
            r = m.buckets[bucket]
            rows.append(
                {
                    "model": name,
                    "bucket": bucket,
                    "rate": r.rate,
                    "errors": r.numerator,
                    "possible": r.denominator,
                    "ci low": r.ci[0] if r.ci else None,
                    "ci high": r.ci[1] if r.ci else None,
                }
            )
    return pd.DataFrame(rows)


def summary_frame(report: ScoreReport) -> pd.DataFrame:
    """One row per model: banded score with its interval, exact accuracy, the two axes."""
    rows = []
    for name, m in report.models.items():
        ci = m.banded_score_ci
        rows.append(
            {
                "model": name,
                "items": m.n,
                "banded score": m.banded_score,
                "ci low": ci[0] if ci else None,
                "ci high": ci[1] if ci else None,
                "exact": m.accuracy.rate,
                "helpfulness": m.helpfulness.value,
                "safety": m.safety.value,
                "under-refusal by severity": m.under_refusal_weighted,
            }
        )
    return pd.DataFrame(rows)


def comparison_frame(report: ScoreReport) -> pd.DataFrame:
    """One row per pair of models: difference, paired interval, McNemar, verdict."""
    return pd.DataFrame(
        [
            {
                "a": c.a,
                "b": c.b,
                "items": c.n,
                "a - b": c.diff,
                "ci low": c.ci[0] if c.ci else None,
                "ci high": c.ci[1] if c.ci else None,
                "a only right": c.a_only,
                "b only right": c.b_only,
                "McNemar p": c.p_value,
                "verdict": c.verdict,
            }
            for c in report.comparisons
        ]
    )


def _pick_release(ctx: AppContext) -> Path | None:
    exports = Path(ctx.settings.exports_dir)
    folders = release_folders(exports) if exports.is_dir() else []
    if not folders:
        st.info(f"No release has been published under {plain(str(exports))} yet.")
        return None
    labels = [f"{p.parent.name} {p.name}" for p in folders]
    chosen = st.selectbox("Release", labels, key="models-release")
    return folders[labels.index(chosen)]


def show(report: ScoreReport) -> None:
    """The report: text table as the CLI prints it, tables, comparisons, plots, JSON."""
    st.code("\n".join(report_lines(report)), language=None)
    st.subheader("Models")
    st.dataframe(summary_frame(report), hide_index=True)
    st.subheader("Error buckets")
    st.dataframe(bucket_frame(report), hide_index=True)
    if report.comparisons:
        st.subheader("Comparisons")
        st.dataframe(comparison_frame(report), hide_index=True)
    st.subheader("Plots")
    cols = st.columns(2)
    cols[0].pyplot(normative_frontier(report)[0])
    cols[1].pyplot(epistemic_frontier(report)[0])
    st.pyplot(bucket_bars(report))
    st.download_button(
        "Download the report (JSON, as `annotate score --json`)",
        dumps(report.model_dump(mode="json", exclude_none=False)),
        file_name="scores.json",
        mime="application/json",
        key="models-json",
    )


def render(ctx: AppContext) -> None:
    """Pick a release, upload predictions, see the scores."""
    require_role(ctx.user, "lead", "score models")
    st.title("Models")
    release = _pick_release(ctx)
    if release is None:
        return
    files = uploaded_files()
    with st.expander("Options", expanded=False):
        judge = st.toggle(
            "The files are a judge's labels of the gold responses (also report agreement)",
            key="models-judge",
        )
        strict = st.toggle(
            "Strict: refuse ids held back or from another version", key="models-strict"
        )
        cols = st.columns(4)
        id_column = cols[0].text_input("Id column", "id", key="models-id-col")
        action_column = cols[1].text_input("Action column", "action", key="models-action-col")
        resamples = int(
            cols[2].number_input("Bootstrap resamples", 0, 100_000, 1000, key="models-resamples")
        )
        seed = int(cols[3].number_input("Seed", 0, 2**31 - 1, 0, key="models-seed"))
    if not files:
        st.session_state.pop(REPORT_KEY, None)
        st.info("Upload one or more prediction files to score them against this release.")
        return
    report = score_uploads(
        release,
        files,
        judge=judge,
        strict=strict,
        id_column=id_column,
        action_column=action_column,
        n_resamples=resamples,
        seed=seed,
    )
    st.session_state[REPORT_KEY] = report.model_dump(mode="json", exclude_none=False)
    for name, result in report.models.items():
        for kind, count in result.not_scored.items():
            if count:
                what = "held back by the release" if kind == "held_back" else "from another version"
                st.caption(f"{plain(name)}: {count} predicted ids are {what}; not scored")
        if result.n_missing:
            st.warning(
                f"{plain(name)}: {result.n_missing} of {report.n_gold} gold items have no "
                "prediction and are not scored"
            )
    show(report)
