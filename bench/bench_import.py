"""Import benchmark: 100,000 item rows from CSV into SQLite (and PostgreSQL if given).

Usage: python bench/bench_import.py [--rows N] [--postgres URL]
Prints one line per backend: rows, seconds for parse + validate + insert (one transaction).
Target (issue 2): under 10 s on SQLite for 100,000 rows.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from annotate import intake, storage
from annotate.accounts.auth import system_actor
from annotate.schema import resolve_schema
from annotate.settings import get_settings
from annotate.storage import db

WORDS = "kill process shoot photo execute script bleed radiator attack opening the a of to".split()


def make_file(path: Path, rows: int) -> None:
    rng = random.Random(1)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt", "response", "model", "category", "group", "focus"])
        for n in range(rows):
            prompt = " ".join(rng.choices(WORDS, k=12)) + "?"
            response = " ".join(rng.choices(WORDS, k=80)) + "."
            w.writerow([f"b-{n}", prompt, response, f"m{n % 5}", f"c{n % 18}", f"g{n // 4}", "x"])


def run(url: str, path: Path, label: str) -> float:
    engine = db.make_engine(url)
    db.migrate(engine)
    actor = system_actor()
    with db.session_scope(engine) as s:
        campaign = storage.create_campaign(
            session=s,
            actor=actor,
            name=f"bench-{uuid.uuid4().hex[:8]}",
            schema=resolve_schema(None, get_settings().schemas_dir),
        )
    start = time.perf_counter()
    records = intake.parse_items(path)
    parsed = time.perf_counter()
    with db.session_scope(engine) as s:
        result = storage.import_items(
            session=s, actor=actor, campaign=campaign, records=records, source=str(path)
        )
    done = time.perf_counter()
    assert result.added == len(records)
    print(
        f"{label}: {result.added} rows imported in {done - start:.2f} s "
        f"(parse+validate {parsed - start:.2f} s, insert {done - parsed:.2f} s)"
    )
    engine.dispose()
    return done - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.csv"
        make_file(path, args.rows)
        print(f"file: {args.rows} rows, {path.stat().st_size / 1e6:.1f} MB")
        run(f"sqlite:///{tmp}/bench.db", path, "sqlite")
        if args.postgres:
            schema = "bench_" + uuid.uuid4().hex[:8]
            admin = db.make_engine(args.postgres)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                sep = "&" if "?" in args.postgres else "?"
                run(f"{args.postgres}{sep}options=-csearch_path%3D{schema}", path, "postgresql")
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
