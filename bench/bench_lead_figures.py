"""The lead pages' figures, one by one, in process: CPU seconds of each at 100,000 items x 3.

Usage: python bench/bench_lead_figures.py [--items N] [--db PATH] [--repeat R] [--code DIR]
Setup (not timed): `bench_release.setup`, a campaign of N items (default 100,000) with three
annotators each, on SQLite (`--db PATH` keeps the database and reuses it on the next run).
Timed: every figure the Dashboard and the Review queue compute from the labels, as the pages
call them (`annotate.app.pages.dashboard`, `review`), each R times (default 3), best CPU time
and its wall time, with the load average beside them. `--code DIR` runs another checkout's
`annotate` (e.g. the code before the change) on the same database; with `--check FILE` the
figures are pickled to FILE, or compared with it when FILE exists (equal: the same figures).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=None)
    parser.add_argument("--check", type=Path, default=None)
    parser.add_argument("--only", default="", help="Comma-separated figure names to time.")
    args = parser.parse_args()
    if args.code is not None:
        sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import warnings

    warnings.filterwarnings("ignore")
    from sqlmodel import select

    import annotate
    from annotate import review, storage
    from annotate.accounts.auth import system_actor
    from annotate.review.controls import leave_one_out_drift
    from annotate.review.figures import ReportFilters
    from annotate.storage import db
    from annotate.storage.models import Campaign, User
    from annotate.storage.queries import load_labels

    print(f"code: {Path(annotate.__file__).parent}")
    db_path = args.db or Path(f"/tmp/bench-lead-figures-{os.getpid()}.db")
    url = f"sqlite:///{db_path}"
    if not db_path.exists():
        from bench_release import setup

        started = time.perf_counter()
        setup(url, args.items)
        print(f"setup: {args.items:,} items x 3 labels in {time.perf_counter() - started:.0f} s")
    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        campaign = s.exec(select(Campaign).order_by(Campaign.id)).first()  # type: ignore[arg-type]
        assert campaign is not None
        lena = s.exec(select(User).where(User.name == "bench-figures-lead")).first()
        if lena is None:
            lena = storage.add_user(
                session=s, actor=system_actor(), name="bench-figures-lead", role="lead"
            )
        s.expunge(lena)
        cpu = time.process_time()
        table = load_labels(session=s, actor=lena, campaign=campaign)
        print(f"labels: {len(table.annotations):,} in {time.process_time() - cpu:.2f} s CPU")
    none = ReportFilters()
    field = table.schema.right_action_field
    figures: dict[str, Callable[[], Any]] = {
        "report (200 resamples)": lambda: review.agreement_report(
            table, actor=lena, filters=none, n_resamples=200
        ),
        "item disagreement": lambda: review.item_disagreement(table, actor=lena, filters=none),
        "leave-one-out drift": lambda: leave_one_out_drift(table, actor=lena),
        "annotator table": lambda: review.annotator_table(
            table, actor=lena, field=field, filters=none
        ),
        "competence": lambda: review.competence(table, actor=lena, field=field),
        "kappa matrix": lambda: review.kappa_matrix(table, actor=lena, field=field, filters=none),
        "label distribution": lambda: review.label_distribution(
            table, actor=lena, field=field, filters=none
        ),
        "confusion": lambda: review.confusion(table, actor=lena, field=field, filters=none),
        "alpha over time (day)": lambda: review.alpha_over_time(
            table, actor=lena, by="day", batch_size=100, filters=none
        ),
        "alpha over time (batch)": lambda: review.alpha_over_time(
            table, actor=lena, by="batch", batch_size=100, filters=none
        ),
        "model suggestions": lambda: review.model_suggestions(table, actor=lena),
    }
    wanted = [w for w in args.only.split(",") if w]
    results: dict[str, Any] = {}
    total = 0.0
    for name, compute in figures.items():
        if wanted and not any(w in name for w in wanted):
            continue
        best = (float("inf"), 0.0)
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = compute()
            best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
        total += best[0]
        print(
            f"{name:<26} {best[0]:7.3f} s CPU ({best[1]:.3f} s wall); "
            f"load average {os.getloadavg()[0]:.1f}"
        )
    print(f"{'total':<26} {total:7.3f} s CPU")
    if args.check is not None:
        _check(args.check, results)


def _check(path: Path, results: dict[str, Any]) -> None:
    import pandas as pd

    def plain(value: Any) -> Any:
        if hasattr(value, "model_dump"):
            return value.model_dump(mode="json")
        return value

    if not path.exists():
        path.write_bytes(pickle.dumps({k: plain(v) for k, v in results.items()}))
        print(f"figures kept in {path}")
        return
    kept = pickle.loads(path.read_bytes())
    for name, value in results.items():
        if name not in kept:
            continue
        mine, theirs = plain(value), kept[name]
        if isinstance(mine, pd.DataFrame):
            try:
                pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
                same = True
            except AssertionError as error:
                same, detail = False, str(error)[:400]
        else:
            same = mine == theirs
            detail = ""
        print(f"{name:<26} {'same' if same else 'DIFFERENT ' + detail}")


if __name__ == "__main__":
    main()
