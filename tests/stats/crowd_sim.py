"""Simulated annotators with known confusion matrices, for the annotator-model tests."""

from __future__ import annotations

import numpy as np


def draw(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row of ``probabilities`` by inverse CDF on uniforms (stable streams)."""
    cumulative = np.cumsum(probabilities, axis=-1)
    cumulative[..., -1] = 1.0
    u = rng.random(probabilities.shape[:-1])
    return (u[..., None] > cumulative).sum(axis=-1)


def simulate(
    confusions: np.ndarray,
    priors: np.ndarray,
    n_units: int,
    seed: int,
    label_rate: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(annotators x units labels as int codes with -1 missing, true classes).

    ``confusions[j, c, k]``: probability that annotator j says k when c is true. Each label is
    present with probability ``label_rate``; every unit keeps at least one label.
    """
    rng = np.random.default_rng(seed)
    truth = draw(rng, np.broadcast_to(priors, (n_units, len(priors))))
    n_annotators = confusions.shape[0]
    codes = np.stack([draw(rng, confusions[j][truth]) for j in range(n_annotators)])
    present = rng.random(codes.shape) < label_rate
    present[0, ~present.any(axis=0)] = True
    return np.where(present, codes, -1), truth


def as_labels(codes: np.ndarray) -> np.ndarray:
    """Int codes to an object matrix with None for missing (the agreement layout)."""
    labels = codes.astype(object)
    labels[codes < 0] = None
    return labels


def diagonal_confusion(accuracy: float, n: int) -> np.ndarray:
    """Right with probability ``accuracy``, else uniformly one of the other classes."""
    off = (1.0 - accuracy) / (n - 1)
    return np.full((n, n), off) + np.eye(n) * (accuracy - off)


# The cross-check set: 5 annotators, 3 classes, 300 units, 80% of labels present.
CHECK_PRIORS = np.array([0.5, 0.3, 0.2])
CHECK_CONFUSIONS = np.array(
    [
        [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7]],
        [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.05, 0.05, 0.9]],
        [[0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6]],
        [[0.95, 0.05, 0.0], [0.05, 0.9, 0.05], [0.0, 0.1, 0.9]],
        [[0.34, 0.33, 0.33], [0.33, 0.34, 0.33], [0.33, 0.33, 0.34]],
    ]
)


def check_set() -> tuple[np.ndarray, np.ndarray]:
    return simulate(CHECK_CONFUSIONS, CHECK_PRIORS, 300, seed=2026, label_rate=0.8)
