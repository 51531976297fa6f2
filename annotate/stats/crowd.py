"""Annotator models for suggested gold: Dawid-Skene and MACE, fitted by EM with numpy.

Pure functions over annotators x units label matrices, the layout of ``annotate.stats.agreement``
(rows are annotators, columns are units, None or NaN is a missing label). Both models give a
posterior over the true class of every unit and a competence figure per annotator:

- Dawid & Skene (1979): each annotator has a confusion matrix ``P(label k | true class c)``;
  class priors are learnt. Started from the soft majority vote, so it is deterministic.
- MACE (Hovy, Berg-Kirkpatrick, Vaswani & Hovy 2013): each annotator either knows the answer
  (probability ``competence``) and gives the true class, or spams from their own label
  distribution; true classes are uniform a priori. Fitted by EM with add-``smoothing`` counts,
  or variational Bayes with Beta and Dirichlet priors, from ``restarts`` seeded random starts;
  the start with the best marginal likelihood wins.

Units that got the very same labels from the very same annotators share a posterior, so the
EM runs over the distinct label columns, each weighted by how many units have it (exactly the
same fit; with 5 annotators and 6 values, 100,000 units have at most a few thousand distinct
columns). Within that the work is in long format (one row per label), O(labels x classes) per
iteration whatever the number of annotators; missing labels simply have no row.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from annotate.errors import AgreementInputError
from annotate.stats.agreement import encode_labels
from annotate.stats.distances import FloatArray, IntArray, LabelMatrix

# Floor for probabilities before taking logs: an unseen confusion cell is unlikely, not
# impossible, so one odd label cannot veto a class outright.
_FLOOR = 1e-10


@dataclass(frozen=True)
class _Long:
    """Labels in long format over the distinct label columns ("patterns").

    One entry per (annotator, pattern) label present; ``unit`` indexes patterns, ``weight``
    is the entry's pattern multiplicity, ``inverse`` maps each original unit to its pattern.
    """

    unit: IntArray
    annotator: IntArray
    code: IntArray
    weight: FloatArray
    multiplicity: FloatArray
    inverse: IntArray
    n_units: int
    n_annotators: int
    n_values: int


class CodedLabels:
    """A label matrix encoded once, for fitting both annotator models on it (`coded_labels`):
    encoding 100,000 units' labels, and finding their distinct columns, is then done once."""

    def __init__(self, codes: IntArray, domain: list[Hashable]) -> None:
        self.codes = codes
        self.domain = domain
        self._long: _Long | None = None

    def long(self) -> _Long:
        """The labels in long format over their distinct columns (computed once)."""
        if self._long is None:
            self._long = _long_from_codes(self.codes, self.domain)
        return self._long


def coded_labels(data: LabelMatrix, labels: Sequence[Hashable] | None = None) -> CodedLabels:
    """`data` encoded over `labels` (as `encode_labels`), to pass to `dawid_skene` and `mace`."""
    codes, domain = encode_labels(data, labels)
    return CodedLabels(codes, domain)


def _long(
    data: LabelMatrix | CodedLabels, labels: Sequence[Hashable] | None
) -> tuple[_Long, list[Hashable]]:
    coded = data if isinstance(data, CodedLabels) else coded_labels(data, labels)
    return coded.long(), coded.domain


def _long_from_codes(codes: IntArray, domain: list[Hashable]) -> _Long:
    if len(domain) < 2:
        raise AgreementInputError(
            f"An annotator model needs at least two labels, got {len(domain)}: {domain!r}"
        )
    patterns, inverse, counts = _distinct_columns(codes, len(domain))
    multiplicity = counts.astype(np.float64)
    annotator, unit = np.nonzero(patterns >= 0)
    return _Long(
        unit=unit.astype(np.int64),
        annotator=annotator.astype(np.int64),
        code=patterns[annotator, unit].astype(np.int64),
        weight=multiplicity[unit],
        multiplicity=multiplicity,
        inverse=inverse,
        n_units=patterns.shape[1],
        n_annotators=codes.shape[0],
        n_values=len(domain),
    )


def _distinct_columns(codes: IntArray, n_values: int) -> tuple[IntArray, IntArray, IntArray]:
    """(distinct columns, each unit's column index, units per column) of a code matrix."""
    n_annotators, n_units = codes.shape
    if n_units == 0:
        return codes, np.zeros(0, np.int64), np.zeros(0, np.int64)
    base = n_values + 1
    if n_annotators * math.log2(base) < 62:
        # One int64 key per column (codes + 1 as base-(V+1) digits): a 1-D unique is much
        # faster than np.unique(axis=1) over rows.
        weights = base ** np.arange(n_annotators, dtype=np.int64)
        keys = weights @ (codes + 1)
        _, first, inverse, counts = np.unique(
            keys, return_index=True, return_inverse=True, return_counts=True
        )
        return codes[:, first], inverse.astype(np.int64), counts.astype(np.int64)
    patterns, inverse, counts = np.unique(codes, axis=1, return_inverse=True, return_counts=True)
    return patterns, np.asarray(inverse, dtype=np.int64).ravel(), counts.astype(np.int64)


def _check_fit_args(max_iter: int, tol: float) -> None:
    if max_iter < 1:
        raise AgreementInputError(f"max_iter must be at least 1, got {max_iter}")
    if not tol >= 0:
        raise AgreementInputError(f"tol must be non-negative, got {tol}")


def _normalise_rows(log_joint: FloatArray, multiplicity: FloatArray) -> tuple[FloatArray, float]:
    """Posterior rows from unnormalised log joints, and the summed log marginal likelihood."""
    top = log_joint.max(axis=1, keepdims=True)
    scaled = np.exp(log_joint - top)
    total = scaled.sum(axis=1, keepdims=True)
    posterior: FloatArray = scaled / total
    return posterior, float(multiplicity @ (np.log(total) + top)[:, 0])


def majority_posterior(data: LabelMatrix, labels: Sequence[Hashable] | None = None) -> FloatArray:
    """Units x values share of each unit's labels per value (uniform where a unit has none)."""
    table, _ = _long(data, labels)
    shares: FloatArray = _vote_shares(table)[table.inverse]
    return shares


def _vote_shares(table: _Long) -> FloatArray:
    flat = np.bincount(
        table.unit * table.n_values + table.code, minlength=table.n_units * table.n_values
    )
    counts = flat.reshape(table.n_units, table.n_values).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / table.n_values)
    shares: FloatArray = np.divide(counts, totals, out=uniform, where=totals > 0)
    return shares


# --- Dawid-Skene -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DawidSkeneFit:
    """A fitted Dawid-Skene model.

    ``posterior`` is units x values (rows sum to 1; units without labels get ``priors``);
    ``confusion[j, c, k]`` is the probability that annotator j says value k when c is true
    (rows over k sum to 1); ``competence[j]`` is the chance annotator j's label is the true
    class, ``sum_c priors[c] confusion[j, c, c]``. ``log_likelihood`` is the marginal log
    likelihood of the labels at the final parameters.
    """

    labels: list[Hashable]
    posterior: FloatArray
    priors: FloatArray
    confusion: FloatArray
    competence: FloatArray
    log_likelihood: float
    iterations: int
    converged: bool

    @property
    def predicted(self) -> IntArray:
        """Index into ``labels`` of each unit's most probable class."""
        best: IntArray = self.posterior.argmax(axis=1)
        return best


def _ds_m_step(
    table: _Long, posterior: FloatArray, smoothing: float
) -> tuple[FloatArray, FloatArray]:
    n_j, n_v = table.n_annotators, table.n_values
    counts = np.empty((n_j, n_v, n_v))
    key = table.annotator * n_v + table.code
    for true in range(n_v):
        weights = posterior[table.unit, true] * table.weight
        counts[:, true, :] = np.bincount(key, weights=weights, minlength=n_j * n_v).reshape(
            n_j, n_v
        )
    counts = np.maximum(counts + smoothing, _FLOOR)
    confusion: FloatArray = counts / counts.sum(axis=2, keepdims=True)
    priors: FloatArray = np.maximum(table.multiplicity @ posterior, _FLOOR)
    return priors / priors.sum(), confusion


def _ds_e_step(table: _Long, priors: FloatArray, confusion: FloatArray) -> tuple[FloatArray, float]:
    log_conf = np.log(confusion)
    # Per label, the log probability of that label under each true class: labels x values.
    per_label = log_conf[table.annotator, :, table.code]
    log_joint = np.empty((table.n_units, table.n_values))
    for true in range(table.n_values):
        log_joint[:, true] = np.bincount(
            table.unit, weights=per_label[:, true], minlength=table.n_units
        )
    log_joint += np.log(priors)
    return _normalise_rows(log_joint, table.multiplicity)


def dawid_skene(
    data: LabelMatrix | CodedLabels,
    labels: Sequence[Hashable] | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-7,
    smoothing: float = 0.01,
) -> DawidSkeneFit:
    """Fit Dawid-Skene by EM from the soft majority vote; deterministic.

    ``labels`` is the value domain (pass the schema's, so an unused value keeps its place);
    ``data`` may also be ``coded_labels(data, labels)``, then ``labels`` is not read.
    ``smoothing`` is a pseudo-count added to every confusion cell (0 gives the plain maximum
    likelihood, with cells floored at 1e-10). Stops when the marginal log likelihood per label
    rises by less than ``tol`` or after ``max_iter`` EM rounds (``converged`` says which).
    Raises AgreementInputError for fewer than two labels in the domain or bad arguments.
    """
    _check_fit_args(max_iter, tol)
    if not smoothing >= 0:
        raise AgreementInputError(f"smoothing must be non-negative, got {smoothing}")
    table, domain = _long(data, labels)
    n_labels = max(float(table.weight.sum()), 1.0)
    posterior = _vote_shares(table)
    priors, confusion = _ds_m_step(table, posterior, smoothing)
    previous = -math.inf
    log_likelihood = -math.inf
    converged = False
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        posterior, log_likelihood = _ds_e_step(table, priors, confusion)
        priors, confusion = _ds_m_step(table, posterior, smoothing)
        if (log_likelihood - previous) / n_labels < tol:
            converged = True
            break
        previous = log_likelihood
    posterior, log_likelihood = _ds_e_step(table, priors, confusion)
    competence = np.einsum("c,jcc->j", priors, confusion)
    return DawidSkeneFit(
        labels=domain,
        posterior=posterior[table.inverse],
        priors=priors,
        confusion=confusion,
        competence=competence,
        log_likelihood=log_likelihood,
        iterations=iterations,
        converged=converged,
    )


# --- MACE ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaceFit:
    """A fitted MACE model.

    ``posterior`` is units x values (uniform for units without labels); ``competence[j]`` is
    the probability that annotator j knows the answer rather than spams (1 - spamming
    probability); ``strategy[j, k]`` is j's label distribution when spamming.
    """

    labels: list[Hashable]
    posterior: FloatArray
    competence: FloatArray
    strategy: FloatArray
    log_likelihood: float
    iterations: int
    converged: bool

    @property
    def predicted(self) -> IntArray:
        """Index into ``labels`` of each unit's most probable class."""
        best: IntArray = self.posterior.argmax(axis=1)
        return best


def _mace_e_step(
    table: _Long, knows_w: FloatArray, spams_w: FloatArray, strategy: FloatArray
) -> tuple[FloatArray, float, FloatArray, FloatArray]:
    """Posterior, log likelihood, and per label: P(knowing | data), the spam weight.

    ``knows_w`` and ``spams_w`` weigh knowing and spamming per annotator (they sum to 1 under
    EM; variational Bayes uses sub-normalised geometric means).
    """
    knows = knows_w[table.annotator]
    spam = spams_w[table.annotator] * strategy[table.annotator, table.code]
    # Under true class c a label is explained by spam alone, plus knowing when it equals c.
    log_spam = np.log(np.maximum(spam, _FLOOR))
    log_hit = np.log(np.maximum(spam + knows, _FLOOR))
    base = np.bincount(table.unit, weights=log_spam, minlength=table.n_units)
    flat = np.bincount(
        table.unit * table.n_values + table.code,
        weights=log_hit - log_spam,
        minlength=table.n_units * table.n_values,
    )
    log_joint = np.asarray(base, dtype=np.float64)[:, None] + np.asarray(
        flat, dtype=np.float64
    ).reshape(table.n_units, table.n_values)
    log_joint -= math.log(table.n_values)
    posterior, log_likelihood = _normalise_rows(log_joint, table.multiplicity)
    knowing = posterior[table.unit, table.code] * knows / np.maximum(spam + knows, _FLOOR)
    return posterior, log_likelihood, knowing, 1.0 - knowing


def _digamma(x: npt.ArrayLike) -> FloatArray:
    """Digamma for positive arguments: recurrence up to 6, then the asymptotic series."""
    x = np.asarray(x, dtype=np.float64).copy()
    result = np.zeros_like(x)
    while True:
        small = x < 6.0
        if not small.any():
            break
        result[small] -= 1.0 / x[small]
        x[small] += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    out: FloatArray = result + np.log(x) - 0.5 * inv - series
    return out


def _mace_m_step(
    table: _Long,
    knowing: FloatArray,
    spamming: FloatArray,
    method: Literal["em", "vb"],
    smoothing: float,
    priors: tuple[float, float, float],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Knowing weights, spamming weights and strategies from the expected counts."""
    n_j, n_v = table.n_annotators, table.n_values
    know = np.bincount(table.annotator, weights=knowing * table.weight, minlength=n_j)
    spam = np.bincount(table.annotator, weights=spamming * table.weight, minlength=n_j)
    by_label = np.bincount(
        table.annotator * n_v + table.code, weights=spamming * table.weight, minlength=n_j * n_v
    ).reshape(n_j, n_v)
    if method == "em":
        knows_w = (know + smoothing) / (know + spam + 2 * smoothing)
        strategy = (by_label + smoothing) / (by_label.sum(axis=1, keepdims=True) + n_v * smoothing)
        return knows_w, 1.0 - knows_w, strategy
    on_knowing, on_spamming, dirichlet = priors
    # Variational Bayes: geometric means of the parameters under their Beta/Dirichlet
    # posteriors, left sub-normalised as the variational E-step wants them.
    total = _digamma(know + spam + on_knowing + on_spamming)
    knows_w = np.exp(_digamma(know + on_knowing) - total)
    spams_w = np.exp(_digamma(spam + on_spamming) - total)
    strategy = np.exp(
        _digamma(by_label + dirichlet)
        - _digamma(by_label.sum(axis=1, keepdims=True) + n_v * dirichlet)
    )
    return knows_w, spams_w, strategy


def mace(
    data: LabelMatrix | CodedLabels,
    labels: Sequence[Hashable] | None = None,
    *,
    method: Literal["em", "vb"] = "em",
    restarts: int = 10,
    seed: int = 0,
    max_iter: int = 100,
    tol: float = 1e-7,
    smoothing: float | None = None,
    theta_prior: tuple[float, float] = (0.5, 0.5),
    strategy_prior: float = 10.0,
) -> MaceFit:
    """Fit MACE from ``restarts`` seeded random starts; keep the best marginal likelihood.

    ``method`` "em" adds ``smoothing`` (default 0.01 / number of values, as in Hovy et al.) to
    the expected counts; "vb" uses Beta(``theta_prior``) on knowing vs spamming and a
    symmetric Dirichlet(``strategy_prior``) on each spamming distribution. Each start stops
    when the log likelihood per label rises by less than ``tol`` or after ``max_iter`` rounds.
    Same data and seed, same fit. ``data`` may be ``coded_labels(data, labels)`` (then
    ``labels`` is not read). Raises AgreementInputError for bad arguments.
    """
    _check_fit_args(max_iter, tol)
    if restarts < 1:
        raise AgreementInputError(f"restarts must be at least 1, got {restarts}")
    if method not in ("em", "vb"):
        raise AgreementInputError(f"method must be 'em' or 'vb', got {method!r}")
    table, domain = _long(data, labels)
    n_j, n_v = table.n_annotators, table.n_values
    add = 0.01 / n_v if smoothing is None else smoothing
    if not add >= 0:
        raise AgreementInputError(f"smoothing must be non-negative, got {smoothing}")
    priors = (theta_prior[0], theta_prior[1], strategy_prior)
    n_labels = max(float(table.weight.sum()), 1.0)
    rng = np.random.default_rng(seed)
    best: MaceFit | None = None
    for _ in range(restarts):
        # Random start: knowing and spamming weights, and strategies, drawn from [1, 1.5).
        start = rng.uniform(1.0, 1.5, size=(n_j, 2))
        knows_w = start[:, 0] / start.sum(axis=1)
        spams_w = 1.0 - knows_w
        strategy = rng.uniform(1.0, 1.5, size=(n_j, n_v))
        strategy /= strategy.sum(axis=1, keepdims=True)
        previous = -math.inf
        converged = False
        iterations = 0
        while iterations < max_iter:
            iterations += 1
            _, log_likelihood, knowing, spamming = _mace_e_step(table, knows_w, spams_w, strategy)
            knows_w, spams_w, strategy = _mace_m_step(table, knowing, spamming, method, add, priors)
            if (log_likelihood - previous) / n_labels < tol:
                converged = True
                break
            previous = log_likelihood
        posterior, log_likelihood, _, _ = _mace_e_step(table, knows_w, spams_w, strategy)
        if best is None or log_likelihood > best.log_likelihood:
            best = MaceFit(
                labels=domain,
                posterior=posterior[table.inverse],
                competence=knows_w / (knows_w + spams_w),
                strategy=strategy / strategy.sum(axis=1, keepdims=True),
                log_likelihood=log_likelihood,
                iterations=iterations,
                converged=converged,
            )
    assert best is not None
    return best
