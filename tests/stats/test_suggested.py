"""Suggested gold: when models are fitted, their summary, where model and majority differ."""

from __future__ import annotations

import numpy as np
import pytest

from annotate.errors import AgreementInputError
from annotate.stats.bands import majority
from annotate.stats.suggested import annotator_models, strict_majority

from .crowd_sim import as_labels, diagonal_confusion, simulate

NAMES = [f"ann{j}" for j in range(7)]


def spammer_campaign() -> tuple[np.ndarray, np.ndarray]:
    confusions = np.array([diagonal_confusion(0.8, 3)] * 3 + [np.full((3, 3), 1 / 3)] * 4)
    codes, truth = simulate(confusions, np.array([0.5, 0.3, 0.2]), 600, seed=21, label_rate=0.7)
    letters = np.array(["a", "b", "c"], dtype=object)
    labels = np.where(codes >= 0, letters[np.maximum(codes, 0)], None)
    return labels, truth


def test_strict_majority_agrees_with_bands_majority() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(-1, 3, size=(4, 300))
    got = strict_majority(codes, 3)
    for u in range(300):
        votes = [str(c) if c >= 0 else None for c in codes[:, u]]
        expected = majority(votes)
        assert (None if got[u] < 0 else str(got[u])) == expected


def test_two_labels_per_item_fit_nothing() -> None:
    data = as_labels(np.array([[0, 1, 2, 0], [0, 1, 1, 0], [-1, -1, -1, -1]]))
    assert annotator_models(data, [0, 1, 2], ["a", "b", "c"]) is None


def test_summary_and_differing_items_on_a_campaign_with_spammers() -> None:
    labels, truth = spammer_campaign()
    got = annotator_models(labels, ["a", "b", "c"], NAMES)
    assert got is not None
    ds, ma = got.dawid_skene, got.mace
    assert list(ds.competence) == NAMES and list(ma.competence) == NAMES
    assert min(ds.competence[n] for n in NAMES[:3]) > max(ds.competence[n] for n in NAMES[3:])
    assert ds.n_units == 600 and ds.converged
    assert ds.n_differs_from_majority == len(got.differing) > 0
    assert ds.n_no_majority <= ds.n_differs_from_majority
    posteriors = [s.posterior for s in got.differing]
    assert posteriors == sorted(posteriors, reverse=True)
    # Where they differ, the model is right more often than the majority.
    index = {"a": 0, "b": 1, "c": 2}
    model_right = sum(index[s.model_label] == truth[s.unit] for s in got.differing)
    majority_right = sum(
        s.majority is not None and index[s.majority] == truth[s.unit] for s in got.differing
    )
    assert model_right > 2 * majority_right, (model_right, majority_right)
    assert got.model_dump()["dawid_skene"]["model"] == "dawid_skene"


def test_wrong_number_of_names_is_named() -> None:
    labels, _ = spammer_campaign()
    with pytest.raises(AgreementInputError, match="Got 2 annotator names for 7 rows of labels"):
        annotator_models(labels, ["a", "b", "c"], ["x", "y"])


def test_summarize_reports_models_ac1_ac2_and_intervals_beside_alpha() -> None:
    from annotate.stats import report as rep

    labels, _ = spammer_campaign()
    two_rows = labels.copy()
    two_rows[2:] = None
    credit = [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]]
    summary = rep.summarize(
        {"right_action": labels, "intent": two_rows},
        {"right_action": ["a", "b", "c"], "intent": ["a", "b", "c"]},
        credit={"right_action": credit},
        n_resamples=200,
        annotators=NAMES,
        models=["right_action", "intent"],
    )
    right = summary.fields["right_action"]
    assert right.annotator_models is not None
    assert list(right.annotator_models.dawid_skene.competence) == NAMES
    assert right.ac1 is not None and right.ac2 is not None and right.ac2.weighted
    assert right.interval is not None and right.interval.alpha == pytest.approx(right.alpha)
    assert right.banded_interval is not None
    assert right.banded_interval.alpha == pytest.approx(right.banded_alpha)
    # Two annotators' labels only: fewer than three labels per item, no model.
    dumped = summary.model_dump(mode="json")["fields"]
    assert "annotator_models" not in dumped["intent"] and "ac2" not in dumped["intent"]
    assert dumped["right_action"]["annotator_models"]["mace"]["model"] == "mace"
