"""Dawid-Skene and MACE: crowd-kit's figures, recovery of known annotators, edge cases."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from conftest import XSTEST

from annotate.errors import AgreementInputError
from annotate.stats import crowd
from annotate.stats.crowd import dawid_skene, mace, majority_posterior

from .crowd_sim import (
    CHECK_CONFUSIONS,
    as_labels,
    check_set,
    diagonal_confusion,
    simulate,
)

# --- crowd-kit's figures ---------------------------------------------------------------------
# crowd-kit 1.4.2 (PyPI; numpy 2.4.6, pandas 3.1.1) in a throwaway venv, on the same labels in
# long format (task, worker, label): DawidSkene(n_iter=1000, tol=1e-12) and
# MACE(n_restarts=1, n_iter=500, method=..., random_state=0); competence is
# spamming_[:, 1] / spamming_.sum(axis=1). Ours: smoothing=0 (crowd-kit floors cells at 1e-10
# and adds nothing), tol=1e-12.

CK_SIM_PRIORS = [0.524559919, 0.2960204634, 0.1794196175]
CK_SIM_CONFUSION = {  # annotator: P(label | true), rows = true class
    0: [[0.9385173641, 0.0531642024, 0.0083184335], [0.0210232037, 0.8587558768, 0.1202209195],
        [0.0, 0.1428100528, 0.8571899472]],
    2: [[0.6172827677, 0.3075005209, 0.0752167114], [0.2425015661, 0.5868925904, 0.1706058436],
        [0.1346336487, 0.2534315995, 0.6119347517]],
    4: [[0.3849608147, 0.2872841669, 0.3277550183], [0.4134967188, 0.3368920462, 0.2496112349],
        [0.4372114041, 0.2248175468, 0.3379710492]],
}  # fmt: skip
CK_SIM_POSTERIOR_SUMS = [157.36797571, 88.80613905, 53.82588527]
CK_SIM_FIRST = [[0.9935158209, 0.0064841791, 0], [0.0009304656, 0.9986953101, 0.0003742243]]
CK_SIM_MACE = {
    "em": [0.81355215, 0.65433092, 0.40741984, 0.88824182, 0.03325751],
    "vb": [0.82450354, 0.64625533, 0.41490528, 0.91392583, 0.03095224],
}
CK_XS_PRIORS = [0.482691612, 0.4404725928, 0.0768357951]
CK_XS_CONFUSION = [
    [[0.9932976294, 0.0017257439, 0.0049766268], [0.005340155, 0.9870489047, 0.0076109403],
     [0.0690106121, 0.0572520609, 0.8737373269]],
    [[0.9840971925, 0.0048718598, 0.0110309477], [0.0018909266, 0.9880760103, 0.0100330631],
     [0.0308952436, 0.0431684332, 0.9259363232]],
]  # fmt: skip
CK_XS_MACE_EM = [0.9561066, 0.97512174]
XS_MODELS = ["gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct"]


def test_dawid_skene_matches_crowd_kit_on_simulated_set() -> None:
    codes, _ = check_set()
    fit = dawid_skene(as_labels(codes), [0, 1, 2], smoothing=0.0, tol=1e-12, max_iter=1000)
    assert fit.converged
    np.testing.assert_allclose(fit.priors, CK_SIM_PRIORS, atol=1e-8)
    for annotator, matrix in CK_SIM_CONFUSION.items():
        np.testing.assert_allclose(fit.confusion[annotator], matrix, atol=1e-8)
    np.testing.assert_allclose(fit.posterior.sum(axis=0), CK_SIM_POSTERIOR_SUMS, atol=1e-6)
    np.testing.assert_allclose(fit.posterior[:2], CK_SIM_FIRST, atol=1e-8)
    assert np.bincount(fit.predicted).tolist() == [155, 92, 53]


@pytest.mark.parametrize("method", ["em", "vb"])
def test_mace_matches_crowd_kit_on_simulated_set(method: str) -> None:
    codes, _ = check_set()
    fit = mace(as_labels(codes), [0, 1, 2], method=method, max_iter=500, tol=1e-12)  # type: ignore[arg-type]
    np.testing.assert_allclose(fit.competence, CK_SIM_MACE[method], atol=1e-6)


@pytest.mark.skipif(not XSTEST.exists(), reason=f"XSTest data not found at {XSTEST}")
def test_crowd_kit_figures_on_xstest() -> None:
    frames = [
        pd.read_csv(XSTEST / "model_completions" / f"xstest_v2_completions_{m}.csv")
        for m in XS_MODELS
    ]
    both = pd.concat(frames, ignore_index=True)[["annotation_1", "annotation_2"]]
    data = both.to_numpy(dtype=object).T
    fit = dawid_skene(data, smoothing=0.0, tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(fit.priors, CK_XS_PRIORS, atol=1e-8)
    np.testing.assert_allclose(fit.confusion, CK_XS_CONFUSION, atol=1e-8)
    assert np.bincount(fit.predicted).tolist() == [1106, 1004, 140]
    # Two annotators barely identify MACE; EM still lands within 1e-3 of crowd-kit's optimum
    # (its VB does not: a different local optimum, so it is not compared here).
    em = mace(data, method="em", max_iter=500, tol=1e-12)
    np.testing.assert_allclose(em.competence, CK_XS_MACE_EM, atol=1e-3)


# --- recovery on simulated annotators --------------------------------------------------------


def test_dawid_skene_recovers_known_confusion_matrices() -> None:
    started = time.perf_counter()
    priors = np.array([0.6, 0.25, 0.15])
    truth_confusions = np.array([diagonal_confusion(a, 3) for a in (0.9, 0.8, 0.7, 0.6)])
    truth_confusions[1] = [[0.8, 0.2, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]]  # a biased one
    codes, truth = simulate(truth_confusions, priors, 4000, seed=11, label_rate=0.9)
    fit = dawid_skene(as_labels(codes), [0, 1, 2])
    # Tolerance: 0.05 per cell; the rarest class has ~540 labelled units per annotator, so
    # a cell's sampling SD is at most ~0.02 and 0.05 is 2.5 of them.
    assert np.abs(fit.confusion - truth_confusions).max() < 0.05
    assert np.abs(fit.priors - priors).max() < 0.02
    assert (fit.predicted == truth).mean() > 0.9
    assert fit.converged
    assert time.perf_counter() - started < 5


def _majority_accuracy(codes: np.ndarray, truth: np.ndarray) -> float:
    """Expected accuracy of majority vote with ties broken at random."""
    shares = majority_posterior(as_labels(codes), [0, 1, 2])
    top = shares == shares.max(axis=1, keepdims=True)
    return float((top[np.arange(len(truth)), truth] / top.sum(axis=1)).mean())


def test_models_beat_majority_vote_when_spammers_label() -> None:
    started = time.perf_counter()
    confusions = np.array(
        [diagonal_confusion(0.8, 3)] * 3 + [np.full((3, 3), 1 / 3)] * 4  # 3 careful, 4 spammers
    )
    codes, truth = simulate(confusions, np.array([0.5, 0.3, 0.2]), 1500, seed=5, label_rate=0.7)
    majority = _majority_accuracy(codes, truth)
    ds = dawid_skene(as_labels(codes), [0, 1, 2])
    ma = mace(as_labels(codes), [0, 1, 2], seed=1)
    ds_accuracy = float((ds.predicted == truth).mean())
    mace_accuracy = float((ma.predicted == truth).mean())
    assert ds_accuracy > majority + 0.05, (ds_accuracy, majority)
    assert mace_accuracy > majority + 0.05, (mace_accuracy, majority)
    # Competence separates the careful annotators from the spammers.
    assert ds.competence[:3].min() > ds.competence[3:].max() + 0.2
    assert ma.competence[:3].min() > 0.6 and ma.competence[3:].max() < 0.15
    assert time.perf_counter() - started < 5


def test_mace_recovers_competence() -> None:
    # MACE's own generative story: knowing with probability theta, else uniform spam.
    thetas = np.array([0.9, 0.7, 0.5, 0.2, 0.0])
    confusions = np.array([t * np.eye(3) + (1 - t) / 3 for t in thetas])
    codes, _ = simulate(confusions, np.full(3, 1 / 3), 3000, seed=8, label_rate=0.9)
    fit = mace(as_labels(codes), [0, 1, 2], seed=0)
    assert np.abs(fit.competence - thetas).max() < 0.05


# --- behaviour -------------------------------------------------------------------------------


def test_same_seed_same_fit_and_missing_units_fall_back() -> None:
    codes, _ = check_set()
    labels = as_labels(codes)
    labels[:, 7] = None  # a unit nobody labelled
    first = mace(labels, [0, 1, 2], seed=3, restarts=3)
    again = mace(labels, [0, 1, 2], seed=3, restarts=3)
    np.testing.assert_array_equal(first.posterior, again.posterior)
    np.testing.assert_allclose(first.posterior[7], [1 / 3] * 3)
    ds = dawid_skene(labels, [0, 1, 2])
    np.testing.assert_allclose(ds.posterior[7], ds.priors)
    np.testing.assert_allclose(ds.posterior.sum(axis=1), 1.0)
    np.testing.assert_allclose(ds.confusion.sum(axis=2), 1.0)


def test_iteration_cap_reports_not_converged() -> None:
    codes, _ = check_set()
    fit = dawid_skene(as_labels(codes), [0, 1, 2], max_iter=2)
    assert (fit.iterations, fit.converged) == (2, False)
    done = dawid_skene(as_labels(codes), [0, 1, 2], tol=1e-3)
    assert done.converged and done.iterations < 100


def test_string_labels_and_unused_value_keep_their_place() -> None:
    data = [["a", "b", "a", "a"], ["a", "b", "b", "a"], ["a", "b", "a", None]]
    fit = dawid_skene(data, ["a", "b", "c"])
    assert fit.labels == ["a", "b", "c"]
    assert fit.posterior.shape == (4, 3)
    assert fit.predicted.tolist() == [0, 1, 0, 0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dawid_skene([["a", "a"]]), "An annotator model needs at least two labels, got 1"),
        (lambda: dawid_skene([["a", "b"]], max_iter=0), "max_iter must be at least 1, got 0"),
        (lambda: dawid_skene([["a", "b"]], smoothing=-1), "smoothing must be non-negative"),
        (lambda: mace([["a", "b"]], restarts=0), "restarts must be at least 1, got 0"),
        (lambda: mace([["a", "b"]], method="gibbs"), "method must be 'em' or 'vb', got 'gibbs'"),
        (lambda: mace([["a", "z"]], ["a", "b"]), "Label `z` is not one of a, b"),
    ],
)
def test_bad_arguments_are_named(call: object, message: str) -> None:
    with pytest.raises(AgreementInputError, match=message):
        call()  # type: ignore[operator]


def test_check_set_is_what_crowd_kit_saw() -> None:
    # Guards the recorded figures: the simulated set must be the one dumped for crowd-kit.
    codes, truth = check_set()
    assert int((codes >= 0).sum()) == 1215
    assert np.bincount(truth).tolist() == [148, 99, 53]
    assert codes[:, :2].tolist() == [[0, 1], [0, 1], [1, -1], [-1, 1], [0, 1]]
    assert CHECK_CONFUSIONS.shape == (5, 3, 3)


def test_models_fitted_on_labels_coded_once_are_the_same_fits() -> None:
    rng = np.random.default_rng(4)
    values = ["a", "b", "c"]
    matrix = np.array(
        [[values[v] if v < 3 else None for v in row] for row in rng.integers(0, 4, (4, 300))],
        dtype=object,
    )
    coded = crowd.coded_labels(matrix, values)
    for fit, again in (
        (crowd.dawid_skene(matrix, values), crowd.dawid_skene(coded)),
        (crowd.mace(matrix, values, restarts=2), crowd.mace(coded, restarts=2)),
    ):
        assert np.array_equal(fit.posterior, again.posterior)
        assert np.array_equal(fit.competence, again.competence)
        assert fit.log_likelihood == again.log_likelihood and fit.labels == again.labels
