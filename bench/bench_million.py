"""One million items: import, label a sample, agreement, release and status, as a user runs them.

Every step is a whole `annotate ...` process (or, for the labeled sample, a process calling the
core claim/submit functions as the labeling page does), timed from outside: wall time, CPU
(user + system) and peak resident memory of that process alone (`os.wait4`), with the load
average. Files and the SQLite database live in a temporary folder, removed at the end; on
PostgreSQL every run gets a schema of its own, dropped at the end.

    python bench/bench_million.py [--items 1000000] [--labeled 100000] [--annotators 3]
        [--sample 2000] [--backends sqlite,postgres] [--pg URL] [--steps import,...]
        [--workdir DIR --keep]   # keep the files, databases and PostgreSQL schema
        [--reuse]                # with --workdir: the files and databases are already there

Steps (in this order; `--steps` picks some): `import` (`annotate import` of the items CSV),
`labels` (`annotate import-labels`: `--labeled` items x 3 annotators, every field, long
form), `sample` (`--annotators` annotators label `--sample` items each through
`annotate.labeling.claim_next` / `submit`; claim and submit p50 / p95), `agreement0`
(`annotate agreement --json --bootstrap 0`), `agreement` (default bootstrap), `release`,
`status`. The code measured is the one on PYTHONPATH (this checkout by default).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CODE = os.environ.get("BENCH_CODE") or str(ROOT)
sys.path.insert(0, CODE)

WORDS = "kill process shoot photo execute script bleed radiator attack opening the a of".split()
RIGHT = ["answer", "answer_with_caveat", "refuse", "clarify", "abstain"]
OTHER = {
    "answer": "answer_with_caveat",
    "answer_with_caveat": "answer",
    "refuse": "abstain",
    "clarify": "abstain",
    "abstain": "clarify",
}
INTENT = {"answer": "benign", "answer_with_caveat": "benign", "refuse": "harmful"}
CAMPAIGN = "million"
STEPS = ("import", "labels", "sample", "agreement0", "agreement", "release", "status")


def make_items(path: Path, n: int) -> None:
    """`n` item rows (id, prompt, response, model, category, group, focus), about 330 bytes each."""
    rng = random.Random(1)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt", "response", "model", "category", "group", "focus"])
        for i in range(n):
            w.writerow(
                [
                    f"m-{i:07d}",
                    " ".join(rng.choices(WORDS, k=12)) + "?",
                    " ".join(rng.choices(WORDS, k=40)) + ".",
                    f"m{i % 5}",
                    f"c{i % 18}",
                    f"g{i // 4}",
                    rng.choice(WORDS),
                ]
            )


def labels_of(i: int, who: int, rng: random.Random) -> dict[str, str]:
    """Refusal-v1 labels that break no rule; annotator 2 differs on one item in ten."""
    right = RIGHT[i % len(RIGHT)]
    mine = OTHER[right] if who == 2 and i % 10 == 0 else right
    return {
        "intent": INTENT.get(right, "ambiguous"),
        "epistemic_status": "uncertain" if right == "abstain" else "answerable",
        "right_action": mine,
        "observed_action": right,
        "failure_categories": "over_refusal" if right == "refuse" and rng.random() < 0.2 else "",
        "confidence": rng.choice(["low", "medium", "high"]),
    }


def make_labels(path: Path, n_items: int, annotators: int = 3) -> None:
    """Long-form labels (item_id, annotator, field, value) of the first `n_items` items."""
    rng = random.Random(2)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "annotator", "field", "value"])
        for i in range(n_items):
            for who in range(annotators):
                for field, value in labels_of(i, who, rng).items():
                    w.writerow([f"m-{i:07d}", f"imported-{who}", field, value])


def timed(name: str, argv: list[str], log: Path, timeout: float) -> dict[str, Any]:
    """Run `argv`; wall, CPU (user + sys) and peak RSS of that process alone."""
    env = {**os.environ, "PYTHONPATH": CODE}
    load = os.getloadavg()[0]
    with (log / f"{name}.out").open("wb") as out, (log / f"{name}.err").open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "step": name,
        "rc": proc.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "load": f"{load:.1f}->{os.getloadavg()[0]:.1f}",
        "timed_out": wall >= timeout,
    }


def annotate(*args: str) -> list[str]:
    return [sys.executable, "-m", "annotate.cli", *args]


def label_sample(url: str, annotators: int, per: int) -> dict[str, Any]:
    """`annotators` annotators label `per` items each, round robin, as the labeling page does."""
    from annotate import labeling, storage
    from annotate.accounts.auth import system_actor
    from annotate.storage import db

    engine = db.make_engine(url)
    with db.session_scope(engine) as s:
        campaign = storage.get_campaign(session=s, name=CAMPAIGN)
        users = [
            storage.add_user(session=s, actor=system_actor(), name=f"sample-{n}")
            for n in range(annotators)
        ]
    rng = random.Random(3)
    claims: list[tuple[float, float]] = []
    firsts: list[tuple[float, float]] = []
    submits: list[tuple[float, float]] = []
    for n in range(annotators * per):
        who = n % annotators
        w0, c0 = time.perf_counter(), time.process_time()
        with labeling.write_session(engine) as s:
            claim = labeling.claim_next(session=s, user=users[who], campaign=campaign)
        w1, c1 = time.perf_counter(), time.process_time()
        (firsts if n < annotators else claims).append((w1 - w0, c1 - c0))
        assert claim is not None, "nothing left to claim"
        labels: dict[str, Any] = labels_of(claim.item.id or 0, who, rng)
        labels["failure_categories"] = [v for v in [labels["failure_categories"]] if v]
        with labeling.write_session(engine) as s:
            labeling.submit(
                session=s,
                user=users[who],
                assignment_id=claim.assignment.id or 0,
                labels=labels,
            )
        submits.append((time.perf_counter() - w1, time.process_time() - c1))
    engine.dispose()

    def pct(xs: list[tuple[float, float]], k: int, q: float) -> float:
        values = sorted(x[k] for x in xs)
        return 1000 * values[int(q * (len(values) - 1))]

    return {
        "labels": len(submits),
        "first_claim_wall_ms": 1000 * statistics.mean(w for w, _ in firsts),
        "first_claim_cpu_ms": 1000 * statistics.mean(c for _, c in firsts),
        **{
            f"{what}_{q_name}_{kind}_ms": pct(xs, k, q)
            for what, xs in (("claim", claims), ("submit", submits))
            for q_name, q in (("p50", 0.5), ("p95", 0.95))
            for k, kind in ((0, "wall"), (1, "cpu"))
        },
    }


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def pg_admin(base: str, sql: str) -> None:
    from sqlalchemy import text

    from annotate.storage import db

    engine = db.make_engine(base)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def run_backend(backend: str, url: str, work: Path, args: argparse.Namespace) -> list[dict]:
    log = work / f"logs-{backend}"
    log.mkdir(exist_ok=True)
    steps = args.steps.split(",")
    results: list[dict[str, Any]] = []
    db = ["--db", url]

    def step(name: str, argv: list[str]) -> None:
        r = timed(name, argv, log, args.timeout)
        r["backend"] = backend
        results.append(r)
        print(json.dumps(r), flush=True)
        if r["rc"] != 0:
            print((log / f"{name}.err").read_text()[-2000:], file=sys.stderr, flush=True)

    if "import" in steps:
        subprocess.run(annotate("init", *db), check=True, capture_output=True)
        subprocess.run(
            annotate("campaign", "create", CAMPAIGN, "--overlap", "3", "--schema", "refusal-v1")
            + ["--seed", "7", *db],
            check=True,
            capture_output=True,
        )
        step("import", annotate("import", str(work / "items.csv"), "-c", CAMPAIGN, *db))
    if "labels" in steps:
        step(
            "import-labels",
            annotate("import-labels", str(work / "labels.csv"), "-c", CAMPAIGN, *db)
            + ["--violations", str(log / "violations.csv")],
        )
    if "sample" in steps:
        sample = [sys.executable, __file__, "--label-sample", url]
        sample += ["--annotators", str(args.annotators), "--sample", str(args.sample)]
        step("label-sample", sample)
        print((log / "label-sample.out").read_text().strip(), flush=True)
    if "agreement0" in steps:
        step(
            "agreement-b0", annotate("agreement", "-c", CAMPAIGN, "--json", "--bootstrap", "0", *db)
        )
    if "agreement" in steps:
        step("agreement", annotate("agreement", "-c", CAMPAIGN, *db))
    if "release" in steps:
        step(
            "release",
            annotate("release", "-c", CAMPAIGN, "--out", str(work / f"out-{backend}"), *db),
        )
    if "status" in steps:
        step("status", annotate("status", "-c", CAMPAIGN, *db))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--labeled", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=3)
    parser.add_argument("--sample", type=int, default=2000, help="items per sample annotator")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per step")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--label-sample", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.label_sample:
        print(json.dumps(label_sample(args.label_sample, args.annotators, args.sample)))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="million-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"code: {CODE}  work: {work}  load {os.getloadavg()[0]:.1f}", flush=True)
    if not args.reuse:
        t = time.perf_counter()
        make_items(work / "items.csv", args.items)
        make_labels(work / "labels.csv", args.labeled)
        print(
            f"files: {args.items:,} items ({(work / 'items.csv').stat().st_size / 1e6:.0f} MB), "
            f"{args.labeled:,} x 3 labels ({(work / 'labels.csv').stat().st_size / 1e6:.0f} MB)"
            f" in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
    results: list[dict[str, Any]] = []
    try:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results += run_backend(backend, f"sqlite:///{work}/million.db", work, args)
                continue
            marker = work / "pg-schema"
            reused = args.reuse and marker.exists()
            schema = marker.read_text() if reused else "million_" + uuid.uuid4().hex[:8]
            if not reused:
                pg_admin(args.pg, f'CREATE SCHEMA "{schema}"')
                marker.write_text(schema)
            try:
                results += run_backend(backend, pg_schema_url(args.pg, schema), work, args)
            finally:
                if not args.keep:
                    pg_admin(args.pg, f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("| step | backend | wall s | CPU s | peak RSS MB | load | rc |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['step']} | {r['backend']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['peak_mb']:,.0f} | {r['load']} | {r['rc']}{' timeout' if r['timed_out'] else ''} |"
        )


if __name__ == "__main__":
    main()
