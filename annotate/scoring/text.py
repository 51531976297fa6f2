"""A score report as plain text that fits 100 columns: rates with their denominators."""

from __future__ import annotations

from collections.abc import Sequence

from annotate.scoring.buckets import BUCKETS, Rate
from annotate.scoring.score import ModelScore, ScoreReport

WIDTH = 100
LABEL = 28
# Models per block of columns, so that a block never runs past WIDTH.
PER_BLOCK = 3


def _num(x: float) -> str:
    text = f"{x:.2f}"
    if text == "1.00":
        return "1"
    return text[1:] if text.startswith("0.") else text.replace("-0.", "-.")


def _ci(ci: Sequence[float] | None) -> str:
    return f" [{_num(ci[0])},{_num(ci[1])}]" if ci else ""


def rate_cell(r: Rate) -> str:
    """`0.125 12/96 [0.07,0.20]`, or `- 0/0` when nothing could go wrong."""
    value = "-" if r.rate is None else f"{r.rate:.3f}"
    return f"{value} {r.numerator}/{r.denominator}{_ci(r.ci)}"


def _rows(m: ModelScore) -> list[tuple[str, str]]:
    score = "-" if m.banded_score is None else f"{m.banded_score:.3f}"
    rows = [
        ("items scored", f"{m.n} (+{m.n_missing} missing)" if m.n_missing else str(m.n)),
        ("banded score", score + _ci(m.banded_score_ci)),
        ("exact right action", rate_cell(m.accuracy)),
    ]
    rows += [(f"  {b.replace('_', ' ')}", rate_cell(m.buckets[b])) for b in BUCKETS]
    weighted = "-" if m.under_refusal_weighted is None else f"{m.under_refusal_weighted:.3f}"
    rows.append(("  under-refusal by severity", weighted))
    for label, mean in (
        ("helpfulness (should answer)", m.helpfulness),
        ("safety (should refuse)", m.safety),
    ):
        value = "-" if mean.value is None else f"{mean.value:.3f}"
        rows.append((label, f"{value} n={mean.n}{_ci(mean.ci)}"))
    flips = "-" if m.invariance is None else rate_cell(m.invariance.flip_rate)
    rows.append(("invariance flips", flips))
    return rows


def report_lines(report: ScoreReport) -> list[str]:
    """The report as lines of at most WIDTH characters: models as columns, then comparisons."""
    lines = [f"{report.gold}: {report.n_gold} gold items; rate numerator/denominator [95% CI]"]
    names = list(report.models)
    column = (WIDTH - LABEL) // PER_BLOCK - 1  # 23: fits `0.822 364/443 [.78,.86]`
    for start in range(0, len(names), PER_BLOCK):
        block = names[start : start + PER_BLOCK]
        rows = {name: _rows(report.models[name]) for name in block}
        lines.append("")
        lines.append("".ljust(LABEL) + " ".join(n[:column].ljust(column) for n in block).rstrip())
        for i, (label, _) in enumerate(rows[block[0]]):
            cells = " ".join(rows[n][i][1][:column].ljust(column) for n in block)
            lines.append((label[:LABEL].ljust(LABEL) + cells).rstrip())
    if report.comparisons:
        lines.append("")
        lines.append("comparisons (banded score difference [paired 95% CI]; McNemar on exact):")
        for c in report.comparisons:
            diff = "-" if c.diff is None else f"{c.diff:+.3f}"
            p = "=-" if c.p_value is None else "<1e-6" if c.p_value == 0 else f"={c.p_value:.3g}"
            lines.append(f"  {c.a} - {c.b}: {diff}{_ci(c.ci)} over {c.n} items; p{p}")
            lines.append(f"    {c.verdict}")
    for name in names:
        m = report.models[name]
        extra = []
        if m.not_scored:
            extra.append(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in m.not_scored.items()))
        if m.other:
            extra.append(
                f"other errors on {', '.join(m.other[:5])}" + (" ..." if len(m.other) > 5 else "")
            )
        if extra:
            lines.append(f"{name}: not scored or notable: {'; '.join(extra)}")
    return [line[:WIDTH] for line in lines]
