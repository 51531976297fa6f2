"""Scoring benchmark: 100,000 predictions for each of 3 models against a 100,000-item release.

Usage: python bench/bench_scoring.py [--items N] [--models M] [--resamples B]
Setup (not timed): a synthetic gold release written with the release writers, and one JSONL
prediction file per model. Timed: `score_release` end to end, the same call as
`annotate score`: check and read gold.parquet, read and validate every prediction file, the
error buckets with Wilson intervals, breakdowns by intent / epistemic status / harm area /
severity / category / group, invariance flips, 1,000 bootstrap resamples for the banded score,
helpfulness and safety, and the pairwise comparisons (paired bootstrap, McNemar); then, also
timed, the three plots as PNG and SVG (what `annotate score --plots DIR` writes), the import
of matplotlib that the first plot costs shown apart. The report's JSON (`--json`) is timed
after, outside the total.
Target (issue 14): under 2 s for 100,000 predictions x 3 models, comparisons and plots.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from annotate.release.folders import publish
from annotate.release.publish import write_release_files
from annotate.schema import resolve_schema
from annotate.scoring.plots import write_plots
from annotate.scoring.predictions import score_release
from annotate.settings import get_settings

INTENT = {"answer": "benign", "answer_with_caveat": "benign", "refuse": "harmful"}


def gold_rows(n: int, actions: list[str], schema: Any) -> list[dict[str, Any]]:
    rng = random.Random(3)
    rows = []
    for i in range(n):
        right = rng.choice(["answer", "answer_with_caveat", "refuse", "clarify", "abstain"])
        rows.append(
            {
                "id": f"s-{i:06d}",
                "prompt": f"question {i}?",
                "conversation": None,
                "response": "an answer",
                "model": f"m{i % 5}",
                "source": "bench",
                "category": f"c{i % 18}",
                "group": f"g{i // 4}",
                "right_action": right,
                "band": schema.default_band(right),
                "intent": INTENT.get(right, "ambiguous"),
                "epistemic_status": "uncertain" if right == "abstain" else "answerable",
                "observed_action": rng.choice(actions),
                "failure_categories": [],
                "soft_labels": {"right_action": {right: 1.0}},
                "n_annotators": 3,
                "disagreement": 0.0,
                "adjudicated": False,
                "adjudicated_by": None,
                "adjudication_note": None,
                "guideline_gap": False,
                "metadata": {
                    "harm_area": "none" if right != "refuse" else "fraud_deception",
                    "severity": "none" if right != "refuse" else ["low", "high"][i % 2],
                    "group_kind": "invariance" if (i // 4) % 2 else "context",
                },
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    schema = resolve_schema(None, get_settings().schemas_dir)
    actions = schema.action_labels
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = gold_rows(args.items, actions, schema)
        release = publish(
            root / "bench",
            1,
            lambda folder: write_release_files(
                folder,
                rows=rows,
                schema=schema,
                dataset="bench",
                version=1,
                parent_version=None,
                created_at="2026-01-01T00:00:00Z",
                created_by="bench",
                counts={"gold": len(rows), "held_back": 0, "adjudicated": 0},
                agreement={},
                policy={"accept": "unanimous", "min_annotations_resolved": 3},
                held_back=[],
                diff_summary=None,
                license="other",
            ),
        )
        files = []
        for m in range(args.models):
            rng = random.Random(m)
            path = root / f"model{m}.jsonl"
            with path.open("w") as fh:
                for row in rows:
                    fh.write(json.dumps({"id": row["id"], "action": rng.choice(actions)}) + "\n")
            files.append(path)
        start, cpu = time.perf_counter(), time.process_time()
        report = score_release(release, files, n_resamples=args.resamples)
        scored, scored_cpu = time.perf_counter() - start, time.process_time() - cpu
        # Still timed: the first plot in a process imports matplotlib; shown apart.
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401

        imported = time.perf_counter() - start
        imported_cpu = time.process_time() - cpu
        written = write_plots(report, root / "plots")
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        dump = time.perf_counter()
        size = len(report.model_dump_json())  # not timed above: `--json` only
        dump = time.perf_counter() - dump
        first = next(iter(report.models.values()))
        # CPU time beside wall time: on a shared machine the wall clock includes waiting.
        print(
            f"score: {args.items} predictions x {args.models} models, {args.resamples} "
            f"resamples, {len(report.comparisons)} comparisons: {scored:.2f} s ({scored_cpu:.2f} "
            f"s CPU); matplotlib import {imported - scored:.2f} s ({imported_cpu - scored_cpu:.2f}"
            f" s CPU); {len(written)} plot files {elapsed - imported:.2f} s "
            f"({cpu - imported_cpu:.2f} s CPU)"
        )
        print(
            f"total: {elapsed:.2f} s wall, {cpu:.2f} s CPU (banded score of model0 "
            f"{first.banded_score}, CI {first.banded_score_ci}; load average "
            f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs); report JSON (not in the total) "
            f"{size / 1e6:.1f} MB in {dump:.2f} s"
        )
        print(f"target < 2 s: {'met' if elapsed < 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
