"""Many annotators labeling at once in Chromium: labels per second and submit latency.

The driver of tests/browser/test_load.py at full size: 20 annotators in one headless Chromium
(a browser context each), each signing in and labeling 25 items by keyboard, concurrently.
Runs on SQLite with one `annotate serve`, then on PostgreSQL with two `annotate serve`
processes on two ports (annotators split across them) when a PostgreSQL URL is given. Checks
the same guarantees as the test, then prints labels per second (wall time, sign-in included)
and p50/p95 from the Ctrl+Enter keypress to the next item on screen.

    python bench/bench_load.py [--annotators 20] [--items-each 25] [--overlap 2]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from annotate.storage import db  # noqa: E402
from tests.browser.conftest import Server, free_port, seed, start_server  # noqa: E402
from tests.browser.load_helpers import check_invariants, drive, make_items  # noqa: E402

SECRET = "bench-load-signing-key-" + "k" * 30


def run(label: str, url: str, replicas: int, args: argparse.Namespace, workdir: Path) -> None:
    names = [f"ann{i:02d}" for i in range(args.annotators)]
    items = args.annotators * args.items_each // args.overlap + args.annotators
    seed(
        url,
        make_items(items),
        dict.fromkeys(names, "annotator"),
        name="load",
        overlap=args.overlap,
        seed=11,
    )
    servers: list[Server] = []
    try:
        for _ in range(replicas):
            port = free_port()
            servers.append(
                start_server(
                    ["serve", "--port", str(port)],
                    url,
                    workdir,
                    port,
                    env={"ANNOTATE_SECRET_KEY": SECRET},
                )
            )
        result = drive(
            [s.url for s in servers],
            names,
            items=args.items_each,
            timeout_s=3600,
            page_timeout_s=args.page_timeout,
        )
    finally:
        for server in servers:
            server.stop()
    print(f"{label}: {result.summary()}")
    try:
        check_invariants(url, result, items=args.items_each, overlap=args.overlap)
    except AssertionError:
        for server in servers:
            print(
                f"--- {server.log.name}, last lines:\n"
                + "\n".join(server.log.read_text().splitlines()[-20:])
            )
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--items-each", type=int, default=25)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--postgres-url", default=os.environ.get("ANNOTATE_TEST_POSTGRES_URL", ""))
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--page-timeout", type=float, default=180.0, help="Seconds a page may wait for one step."
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            run("SQLite, 1 process", f"sqlite:///{tmp}/load.db", 1, args, Path(tmp))
        if args.postgres_url:
            schema = "bench_load_" + uuid.uuid4().hex[:8]
            admin = db.make_engine(args.postgres_url)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in args.postgres_url else "?"
            url = f"{args.postgres_url}{sep}options=-csearch_path%3D{schema}"
            try:
                run("PostgreSQL, 2 processes", url, 2, args, Path(tmp))
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
