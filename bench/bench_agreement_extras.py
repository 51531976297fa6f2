"""Benchmark Gwet's AC1/AC2, Dawid-Skene, MACE and the BCa interval on synthetic labels.

Run from the repository root: ``python bench/bench_agreement_extras.py``. Seeded synthetic
data: 100,000 items x 5 annotators over refusal-v1's six right actions (each annotator right
with probability 0.8, else a random action; 10% of labels missing). Each figure is the best
of ``--repeat`` runs, wall-clock, on one BLAS thread. ``summarize_*`` is the agreement
summary the report builds (``annotate.stats.report.summarize``) over the right action and a
second field (intent: 3 values) with AC1/AC2 and both annotator models on both, without and
with BCa intervals; ``whole_report`` adds three more fields and failure-category sets (MASI and
one binary alpha per category), as a campaign's report has. Summaries also print their best
process CPU time, which other processes on the machine sway less than wall time. Prints plain
``name: value`` lines.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from annotate.stats import band_distance
from annotate.stats import report as rep
from annotate.stats.crowd import dawid_skene, mace
from annotate.stats.gwet import gwet_ac1, gwet_ac2
from annotate.stats.intervals import alpha_interval

ACTIONS = ["answer", "answer_with_caveat", "answer_safe_part", "clarify", "abstain", "refuse"]
CREDIT = np.array(
    [
        [1, 0.75, 0.25, 0, 0, 0],
        [0.75, 1, 0.5, 0, 0, 0],
        [0.25, 0.5, 1, 0.5, 0, 0.25],
        [0, 0, 0.5, 1, 0.5, 0],
        [0, 0, 0, 0.5, 1, 0.25],
        [0, 0, 0.25, 0, 0.25, 1],
    ]
)


def synthetic(n_items: int, n_annotators: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(ACTIONS), size=n_items, p=[0.55, 0.15, 0.08, 0.05, 0.05, 0.12])
    right = rng.random((n_annotators, n_items)) < 0.8
    codes = np.where(right, truth, rng.integers(0, len(ACTIONS), (n_annotators, n_items)))
    labels = np.asarray(ACTIONS, dtype=object)[codes]
    labels[rng.random(labels.shape) < 0.1] = None
    return labels


def synthetic_intent(n_items: int, n_annotators: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.array(["benign", "ambiguous", "harmful"], dtype=object)
    truth = rng.choice(3, size=n_items, p=[0.7, 0.1, 0.2])
    right = rng.random((n_annotators, n_items)) < 0.85
    labels = values[np.where(right, truth, rng.integers(0, 3, (n_annotators, n_items)))]
    labels[rng.random(labels.shape) < 0.1] = None
    return labels


def best_of(repeat: int, call: Callable[[], Any]) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return min(times), result


def best_cpu(repeat: int, call: Callable[[], Any]) -> float:
    """Best process CPU seconds of `repeat` calls (less swayed by other processes than wall)."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        call()
        times.append(time.process_time() - started)
    return min(times)


def synthetic_other(n_items: int, n_annotators: int, seed: int, values: list[str]) -> np.ndarray:
    """A field each annotator gets right with probability 0.85 (10% missing)."""
    rng = np.random.default_rng(seed)
    domain = np.asarray(values, dtype=object)
    truth = rng.integers(0, len(values), n_items)
    right = rng.random((n_annotators, n_items)) < 0.85
    out = domain[np.where(right, truth, rng.integers(0, len(values), (n_annotators, n_items)))]
    out[rng.random(out.shape) < 0.1] = None
    return out


CATEGORIES = ["over_refusal", "unsafe_compliance", "irrelevant_safety_pivot", "overconfidence"]


def synthetic_sets(n_items: int, n_annotators: int, seed: int) -> np.ndarray:
    """Failure-category sets: mostly empty, a few categories ticked (10% missing)."""
    rng = np.random.default_rng(seed)
    ticks = rng.random((n_annotators, n_items, len(CATEGORIES))) < 0.06
    out = np.empty((n_annotators, n_items), dtype=object)
    for a in range(n_annotators):
        for i in range(n_items):
            out[a, i] = frozenset(c for c, t in zip(CATEGORIES, ticks[a, i], strict=True) if t)
    out[rng.random(out.shape) < 0.1] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = synthetic(args.items, args.annotators, seed=16)
    print(f"python: {platform.python_version()}  numpy: {np.__version__}")
    print(f"data: {args.items} items x {args.annotators} annotators, {len(ACTIONS)} actions")
    with threadpool_limits(limits=1, user_api="blas"):
        t1, ac1 = best_of(args.repeat, lambda: gwet_ac1(data, ACTIONS))
        t2, ac2 = best_of(args.repeat, lambda: gwet_ac2(data, CREDIT, ACTIONS))
        t3, ds = best_of(args.repeat, lambda: dawid_skene(data, ACTIONS))
        t4, ma = best_of(1, lambda: mace(data, ACTIONS, restarts=3))
        t5, iv = best_of(
            1, lambda: alpha_interval(data, band_distance(CREDIT), ACTIONS, n_resamples=2000)
        )
    intent = synthetic_intent(args.items, args.annotators, seed=17)
    fields = {"right_action": data, "intent": intent}
    labels = {"right_action": ACTIONS, "intent": ["benign", "ambiguous", "harmful"]}
    names = [f"ann{j}" for j in range(args.annotators)]

    def summary(resamples: int) -> rep.AgreementSummary:
        return rep.summarize(
            fields,
            labels,
            credit={"right_action": CREDIT},
            ordinal=["intent"],
            n_resamples=resamples,
            annotators=names,
            models=["right_action", "intent"],
        )

    full_fields = fields | {
        "epistemic_status": synthetic_other(args.items, args.annotators, 18, ["a", "b", "c"]),
        "observed_action": synthetic_other(args.items, args.annotators, 19, ACTIONS + ["pivot"]),
        "confidence": synthetic_other(args.items, args.annotators, 20, ["low", "med", "high"]),
    }
    full_labels = labels | {
        "epistemic_status": ["a", "b", "c"],
        "observed_action": ACTIONS + ["pivot"],
        "confidence": ["low", "med", "high"],
    }
    sets = synthetic_sets(args.items, args.annotators, 21)

    def full(resamples: int) -> rep.AgreementSummary:
        return rep.summarize(
            full_fields,
            full_labels,
            credit={"right_action": CREDIT},
            ordinal=["intent", "confidence"],
            failure_categories=sets,
            categories=CATEGORIES,
            n_resamples=resamples,
            annotators=names,
            models=["right_action", "intent"],
        )

    with threadpool_limits(limits=1, user_api="blas"):
        t6, _ = best_of(args.repeat, lambda: summary(0))
        c6 = best_cpu(args.repeat, lambda: summary(0))
        t7, _ = best_of(1, lambda: summary(1000))
        t8, _ = best_of(args.repeat, lambda: full(0))
        c8 = best_cpu(args.repeat, lambda: full(0))
    print(f"ac1_seconds: {t1:.3f}  (AC1 {ac1.coefficient:.4f} SE {ac1.se:.5f})")
    print(f"ac2_seconds: {t2:.3f}  (AC2 {ac2.coefficient:.4f} SE {ac2.se:.5f})")
    print(f"dawid_skene_seconds: {t3:.3f}  ({ds.iterations} EM rounds, converged {ds.converged})")
    print(f"ac1_ac2_dawid_skene_seconds: {t1 + t2 + t3:.3f}")
    print(f"mace_3_restarts_seconds: {t4:.3f}  ({ma.iterations} EM rounds in the best start)")
    print(
        f"bca_interval_banded_2000_resamples_seconds: {t5:.3f}  "
        f"(alpha {iv.alpha:.4f}, CI {iv.ci[0]:.4f} to {iv.ci[1]:.4f}, {iv.reading})"
    )
    print(f"summarize_two_fields_with_models_no_intervals_seconds: {t6:.3f}  (CPU {c6:.3f})")
    print(f"whole_report_six_fields_and_failure_sets_no_intervals_seconds: {t8:.3f}", end="")
    print(f"  (CPU {c8:.3f})")
    print(f"summarize_two_fields_with_models_1000_resamples_seconds: {t7:.3f}")


if __name__ == "__main__":
    main()
