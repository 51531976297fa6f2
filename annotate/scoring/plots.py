"""Plots of a score report: the normative and epistemic frontiers, and error buckets per model.

Every model appears on both frontiers with its intervals drawn; labels are placed so that they
overlap neither each other nor the points. Figures are written as PNG and SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from annotate.scoring.buckets import BUCKETS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

    from annotate.scoring.score import ScoreReport

FORMATS = ("png", "svg")
# Offsets (points) tried in turn for a label, nearest first, in eight directions.
_DIRECTIONS = (
    (1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1),
    (2, 1), (2, -1), (-2, 1), (-2, -1), (1, 2), (1, -2), (-1, 2), (-1, -2),
)  # fmt: skip
_RADII = (6, 12, 20, 30, 44, 60, 80, 104, 130)


def _figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _err(value: float, ci: Sequence[float] | None) -> Any:
    if not ci:
        return None
    return [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]]


def place_labels(
    ax: Axes, points: Sequence[tuple[float, float]], names: Sequence[str]
) -> list[Bbox]:
    """Annotate each point with its name where the label overlaps no other label or point.

    Returns the labels' boxes in display coordinates (for tests). A label that fits nowhere
    goes to its farthest candidate position.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    to_display = ax.transData.transform
    point_boxes = [Bbox.from_extents(*(to_display(p) - 5), *(to_display(p) + 5)) for p in points]
    frame = ax.get_window_extent(renderer)
    placed: list[Bbox] = []
    for point, name in zip(points, names, strict=True):
        chosen = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                text = ax.annotate(
                    name,
                    point,
                    xytext=(dx * radius, dy * radius),
                    textcoords="offset points",
                    fontsize=9,
                    ha="left" if dx > 0 else "right" if dx < 0 else "center",
                    va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                    arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"}
                    if radius > _RADII[1]
                    else None,
                )
                box = text.get_window_extent(renderer)
                inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
                clear = not any(box.overlaps(b) for b in placed + point_boxes)
                if inside and clear:
                    chosen = box
                    break
                text.remove()
            if chosen is not None:
                break
        if chosen is None:
            dx, dy = _DIRECTIONS[len(placed) % 4]  # diagonals: stay clear of the axis titles
            text = ax.annotate(
                name,
                point,
                xytext=(dx * _RADII[-1], dy * _RADII[-1]),
                textcoords="offset points",
                fontsize=9,
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"},
            )
            chosen = text.get_window_extent(renderer)
        placed.append(chosen)
    return placed


def _frontier(
    report: ScoreReport,
    *,
    x_label: str,
    y_label: str,
    values: dict[str, tuple[float | None, Any, float | None, Any]],
    title: str,
) -> tuple[Figure, list[Bbox]]:
    fig, ax = _figure((6.5, 6.0))
    points, names = [], []
    for name, (x, x_ci, y, y_ci) in values.items():
        if x is None or y is None:
            continue
        ax.errorbar([x], [y], xerr=_err(x, x_ci), yerr=_err(y, y_ci), fmt="o", capsize=3)
        points.append((x, y))
        names.append(name)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(f"{title} ({report.gold})", fontsize=10, y=1.0)  # y: no auto placement
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig, place_labels(ax, points, names)


def normative_frontier(report: ScoreReport) -> tuple[Figure, list[Bbox]]:
    """Helpfulness on should-answer items against safety on should-refuse items."""
    values = {
        name: (m.helpfulness.value, m.helpfulness.ci, m.safety.value, m.safety.ci)
        for name, m in report.models.items()
    }
    return _frontier(
        report,
        x_label="helpfulness: mean credit where the right action is to answer",
        y_label="safety: mean credit where the right action is to refuse or answer in part",
        values=values,
        title="Normative frontier (top right is best)",
    )


def epistemic_frontier(report: ScoreReport) -> tuple[Figure, list[Bbox]]:
    """Over-abstention rate against overconfidence rate (bottom left is best)."""
    values = {}
    for name, m in report.models.items():
        x, y = m.buckets["over_abstention"], m.buckets["overconfidence"]
        values[name] = (x.rate, x.ci, y.rate, y.ci)
    return _frontier(
        report,
        x_label="over-abstention: said it could not know what it could",
        y_label="overconfidence: answered where it should abstain or correct the premise",
        values=values,
        title="Epistemic frontier (bottom left is best)",
    )


def bucket_bars(report: ScoreReport) -> Figure:
    """Grouped bars: each error bucket's rate per model, with Wilson intervals."""
    import numpy as np

    fig, ax = _figure((9.0, 4.8))
    names = list(report.models)
    width = 0.8 / max(1, len(names))
    x = np.arange(len(BUCKETS))
    for k, name in enumerate(names):
        rates = [report.models[name].buckets[b] for b in BUCKETS]
        heights = [r.rate or 0.0 for r in rates]
        errs = np.array(
            [
                [h - r.ci[0], r.ci[1] - h] if r.ci else [0.0, 0.0]
                for h, r in zip(heights, rates, strict=True)
            ]
        ).T
        ax.bar(x + k * width, heights, width, yerr=errs, capsize=2, label=name)
    ax.set_xticks(x + width * (len(names) - 1) / 2)
    ax.set_xticklabels([b.replace("_", "\n") for b in BUCKETS], fontsize=8)
    ax.set_ylabel("rate (of the items where the error is possible)")
    ax.set_ylim(0, 1)
    ax.set_title(f"Error buckets per model ({report.gold})", fontsize=10, y=1.0)
    if names:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def write_plots(report: ScoreReport, folder: Path) -> list[Path]:
    """normative, epistemic and buckets plots in `folder`, each as PNG and SVG."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        "normative": normative_frontier(report)[0],
        "epistemic": epistemic_frontier(report)[0],
        "buckets": bucket_bars(report),
    }
    written = []
    for stem, fig in figures.items():
        for fmt in FORMATS:
            path = folder / f"{stem}.{fmt}"
            fig.savefig(path, format=fmt)
            written.append(path)
    return written


def tradeoff_plot(report: ScoreReport, path: Path) -> None:
    """The normative frontier as one PNG at `path` (`annotate score --plot`)."""
    normative_frontier(report)[0].savefig(path, format="png")
