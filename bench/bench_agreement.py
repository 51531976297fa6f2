"""Benchmark annotate.stats (alpha, bootstrap) against the krippendorff package's raw-matrix call.

Run from the repository root: ``python bench/bench_agreement.py``. Each figure is measured in
its own subprocess (so peak memory is that measurement's alone) on seeded synthetic data:

- report: ``summarize`` without bootstrap on 100,000 items x 5 annotators, every field
  (target < 2 s), beside the package called on the raw annotators x units matrix for the
  same alphas (MASI left out of that baseline: the package's units x V x V temporaries over
  the distinct sets would not fit in memory);
- bootstrap: ``summarize`` with 1,000 resamples on 10,000 items x 5 annotators (target < 5 s),
  beside an estimate of calling the package once per resample;
- db-report: what a lead waits for, from an SQLite file holding 100,000 items x 5 annotators
  (500,000 annotations, built first and not timed): ``queries.load_labels`` alone, then
  ``review.campaign_report`` (load + every figure) without bootstrap and with the CLI's
  default 1,000 resamples.

Prints plain ``name: value`` lines.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
from sqlalchemy import insert

from annotate import review, storage
from annotate import stats as ag
from annotate.accounts.auth import system_actor
from annotate.schema import resolve_schema
from annotate.settings import get_settings
from annotate.stats import report as rep
from annotate.storage import db
from annotate.storage.models import Annotation, Item
from annotate.storage.queries import load_labels

ANNOTATORS = 5
FIELDS: dict[str, list[str]] = {
    "right_action": [
        "answer",
        "answer_with_caveat",
        "answer_safe_part",
        "clarify",
        "abstain",
        "refuse",
    ],
    "observed_action": [
        "answer",
        "answer_with_caveat",
        "answer_safe_part",
        "clarify",
        "abstain",
        "refuse",
        "pivot",
    ],
    "intent": ["benign", "ambiguous", "harmful"],
    "epistemic_status": ["answerable", "uncertain", "false_premise", "ill_posed"],
    "confidence": ["low", "medium", "high"],
}
CATEGORIES = [
    "over_refusal",
    "unsafe_compliance",
    "partial_compliance",
    "irrelevant_safety_pivot",
    "grounding_failure",
    "intent_misclassification",
    "overconfidence",
    "false_premise_accepted",
    "disproportionate_caveat",
]
CREDIT_PAIRS = {
    ("answer", "answer_with_caveat"): 0.75,
    ("answer_with_caveat", "answer_safe_part"): 0.5,
    ("answer_safe_part", "clarify"): 0.5,
    ("clarify", "abstain"): 0.5,
    ("answer_safe_part", "refuse"): 0.25,
    ("abstain", "refuse"): 0.25,
    ("answer", "answer_safe_part"): 0.25,
}
MISSING = 0.08  # share of (annotator, item) cells left unlabeled


def credit_matrix() -> np.ndarray:
    labels = FIELDS["right_action"]
    credit = np.eye(len(labels))
    for (a, b), value in CREDIT_PAIRS.items():
        credit[labels.index(a), labels.index(b)] = credit[labels.index(b), labels.index(a)] = value
    return credit


def synthetic(n_items: int, seed: int = 0) -> dict[str, Any]:
    """Annotators x items label matrices: each annotator copies a hidden truth 75% of the time."""
    rng = np.random.default_rng(seed)
    codes: dict[str, np.ndarray] = {}
    fields: dict[str, np.ndarray] = {}
    for name, labels in FIELDS.items():
        truth = rng.integers(0, len(labels), n_items)
        noise = rng.integers(0, len(labels), (ANNOTATORS, n_items))
        picked = np.where(rng.random((ANNOTATORS, n_items)) < 0.75, truth, noise)
        picked[rng.random(picked.shape) < MISSING] = -1
        codes[name] = picked
        table = np.array([*labels, None], dtype=object)  # index -1 is None
        fields[name] = table[picked]
    # Failure categories as bit masks: mostly "fine" (empty), a few flips per annotator.
    truth_mask = np.where(
        rng.random(n_items) < 0.6, 0, 1 << rng.integers(0, len(CATEGORIES), n_items)
    )
    flips = (rng.random((ANNOTATORS, n_items, len(CATEGORIES))) < 0.03) @ (
        1 << np.arange(len(CATEGORIES))
    )
    masks = truth_mask ^ flips
    missing = rng.random(masks.shape) < MISSING
    pool = np.empty((1 << len(CATEGORIES)) + 1, dtype=object)
    for mask in range(1 << len(CATEGORIES)):
        pool[mask] = frozenset(c for bit, c in enumerate(CATEGORIES) if mask >> bit & 1)
    pool[-1] = None
    sets = pool[np.where(missing, -1, masks)]
    bits = np.where(missing[..., None], -1, (masks[..., None] >> np.arange(len(CATEGORIES))) & 1)
    return {"fields": fields, "codes": codes, "sets": sets, "bits": bits}


def run_report(data: dict[str, Any], n_resamples: int) -> rep.AgreementSummary:
    return rep.summarize(
        data["fields"],
        FIELDS,
        credit={"right_action": credit_matrix()},
        ordinal=["intent"],
        failure_categories=data["sets"],
        categories=CATEGORIES,
        n_resamples=n_resamples,
    )


def run_baseline(data: dict[str, Any]) -> list[float]:
    """The package on raw annotators x units matrices (NaN missing) for the same alphas."""
    dist = ag.band_distance(credit_matrix())

    def banded(v1: Any, v2: Any, i1: Any, i2: Any, n_v: Any, dtype: Any = None) -> Any:
        return dist[i1, i2]

    results = []
    for name, labels in FIELDS.items():
        raw = np.where(data["codes"][name] >= 0, data["codes"][name], np.nan)
        domain = np.arange(len(labels))
        levels: list[Any] = ["nominal"]
        if name == "right_action":
            levels.append(banded)
        if name == "intent":
            levels.append("ordinal")
        for level in levels:
            results.append(
                krippendorff.alpha(
                    reliability_data=raw, value_domain=domain, level_of_measurement=level
                )
            )
    for column in range(len(CATEGORIES)):
        raw = np.where(data["bits"][..., column] >= 0, data["bits"][..., column], np.nan)
        results.append(
            krippendorff.alpha(
                reliability_data=raw, value_domain=[0, 1], level_of_measurement="nominal"
            )
        )
    return [float(r) for r in results]


def rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, operation: Callable[[], object], repeats: int) -> None:
    """Time ``operation`` (best of ``repeats`` after a warm-up), then its traced peak memory."""
    rss_before = rss_mib()
    operation()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        operation()
        times.append(time.perf_counter() - start)
    rss_after = rss_mib()
    tracemalloc.start()
    operation()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name} seconds best: {min(times):.3f}")
    print(f"{name} seconds median: {float(np.median(times)):.3f}")
    print(f"{name} peak traced MiB: {peak / 2**20:.1f}")
    print(f"{name} maxrss MiB (process, incl. data): {rss_after:.1f}")
    print(f"{name} maxrss growth MiB over data: {rss_after - rss_before:.1f}")


def build_database(path: Path, n_items: int) -> None:
    """An SQLite campaign `bench` with the synthetic labels, inserted in bulk (not timed)."""
    data = synthetic(n_items)
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    admin = system_actor()
    with db.session_scope(engine) as session:
        schema = resolve_schema(None, get_settings().schemas_dir)
        campaign = storage.create_campaign(
            session=session, actor=admin, name="bench", schema=schema, overlap=ANNOTATORS
        )
        lead = storage.add_user(session=session, actor=admin, name="lead", role="lead")
        users = [
            storage.add_user(session=session, actor=admin, name=f"a{i}") for i in range(ANNOTATORS)
        ]
        start = datetime(2026, 1, 1, tzinfo=UTC)
        session.execute(
            insert(Item),
            [
                {
                    "campaign_id": campaign.id,
                    "external_id": f"b-{n}",
                    "prompt": "p",
                    "response": "r",
                    "model": f"m{n % 5}",
                    "category": f"c{n % 18}",
                    "meta": {},
                    "content_hash": f"{n:064x}",
                    "created_at": start,
                }
                for n in range(n_items)
            ],
        )
        ids = [i for (i,) in session.execute(Item.__table__.select().with_only_columns(Item.id))]
        rows = []
        for a, user in enumerate(users):
            for n, item_id in enumerate(ids):
                if data["sets"][a, n] is None:  # the synthetic "missing" cells
                    continue
                labels: dict[str, Any] = {name: data["fields"][name][a, n] for name in FIELDS}
                labels["failure_categories"] = sorted(data["sets"][a, n])
                labels["rationale"] = None
                when = start + timedelta(minutes=n)  # ~70 days of labeling
                rows.append(
                    {
                        "campaign_id": campaign.id,
                        "item_id": item_id,
                        "user_id": user.id,
                        "labels": labels,
                        "flagged": False,
                        "overridden_rules": [],
                        "duration_s": 20.0 + (n % 40),
                        "origin": "import",
                        "created_at": when,
                        "updated_at": when,
                    }
                )
        for first in range(0, len(rows), 20_000):
            session.execute(insert(Annotation), rows[first : first + 20_000])
        assert lead.id is not None
    engine.dispose()


def db_report(path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{path}")
    with db.session_scope(engine) as session:
        actor = storage.get_user(session=session, name="lead")

    def load() -> Any:
        with db.session_scope(engine) as session:
            campaign = storage.get_campaign(session=session, name="bench")
            return load_labels(session=session, actor=actor, campaign=campaign)

    def report(n_resamples: int) -> Callable[[], object]:
        def run() -> object:
            with db.session_scope(engine) as session:
                campaign = storage.get_campaign(session=session, name="bench")
                return review.campaign_report(
                    session=session, actor=actor, campaign=campaign, n_resamples=n_resamples
                )

        return run

    table = load()
    print(f"db-report annotations: {len(table.annotations)}")
    measure("db-load_labels", load, repeats=2)
    measure("db-report", report(0), repeats=2)
    measure("db-report-bootstrap1000", report(1000), repeats=1)
    start = time.perf_counter()
    review.item_disagreement(table, actor=actor)
    print(f"db item_disagreement (queue order) seconds: {time.perf_counter() - start:.3f}")
    start = time.perf_counter()
    review.annotator_table(table, actor=actor)
    print(f"db annotator_table seconds: {time.perf_counter() - start:.3f}")
    start = time.perf_counter()
    review.alpha_over_time(table, actor=actor)
    print(f"db alpha_over_time (per day) seconds: {time.perf_counter() - start:.3f}")
    engine.dispose()


def child(which: str) -> None:
    if which == "report":
        data = synthetic(100_000)
        distinct = len({s for s in data["sets"].ravel() if s is not None})
        print(f"report distinct failure-category sets: {distinct}")
        measure("report", lambda: run_report(data, 0), repeats=3)
    elif which == "baseline":
        data = synthetic(100_000)
        measure("baseline", lambda: run_baseline(data), repeats=3)
        summary = run_report(data, 0)
        ours = [summary.fields[name].alpha for name in FIELDS]
        theirs = run_baseline(data)
        nominal = [theirs[0], theirs[2], theirs[3], theirs[5], theirs[6]]
        worst = max(abs((a or 0.0) - b) for a, b in zip(ours, nominal, strict=True))
        print(f"baseline max abs difference to report (nominal fields): {worst:.2e}")
    elif which == "bootstrap":
        data = synthetic(10_000)
        measure("bootstrap", lambda: run_report(data, 1000), repeats=2)
        summary = run_report(data, 1000)
        print(f"bootstrap right_action alpha: {summary.fields['right_action'].alpha:.4f}")
        print(f"bootstrap right_action ci: {summary.fields['right_action'].ci}")
        # What calling the package once per resample would cost (MASI still left out).
        start = time.perf_counter()
        run_baseline(data)
        naive = (time.perf_counter() - start) * 1000
        print(f"bootstrap naive estimate (package raw call x 1000 resamples) seconds: {naive:.1f}")
    elif which == "db-report":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            start = time.perf_counter()
            build_database(path, 100_000)
            built = time.perf_counter() - start
            print(f"db-report build (not part of the figure) seconds: {built:.1f}")
            print(f"db-report file MiB: {path.stat().st_size / 2**20:.0f}")
            db_report(path)
    elif which == "bootstrap-points-only":
        data = synthetic(10_000)
        measure("bootstrap-points-only", lambda: run_report(data, 0), repeats=3)
    else:
        raise SystemExit(f"Unknown measurement {which!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", help="run one measurement in this process (internal)")
    parser.add_argument(
        "--only", action="append", help="run only this measurement (repeatable), e.g. db-report"
    )
    args = parser.parse_args()
    if args.measure:
        child(args.measure)
        return
    print(f"python: {platform.python_version()}")
    print(f"numpy: {np.__version__}")
    print(f"krippendorff: {version('krippendorff')}")
    print(f"cpus: {len(os.sched_getaffinity(0))}")
    seconds: dict[str, float] = {}
    parser_choices = ("report", "baseline", "bootstrap-points-only", "bootstrap", "db-report")
    for which in args.only or parser_choices:
        result = subprocess.run(
            [sys.executable, __file__, "--measure", which],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in result.stdout.splitlines():
            print(line)
            if line.startswith(f"{which} seconds best:"):
                seconds[which] = float(line.rsplit(":", 1)[1])
    if "report" in seconds and "baseline" in seconds:
        print(
            "report / package raw-matrix baseline (time ratio): "
            f"{seconds['report'] / seconds['baseline']:.2f}"
        )
    if "report" in seconds:
        print(f"report under 2 s: {seconds['report'] < 2}")
    if "bootstrap" in seconds:
        print(f"bootstrap under 5 s: {seconds['bootstrap'] < 5}")


if __name__ == "__main__":
    main()
