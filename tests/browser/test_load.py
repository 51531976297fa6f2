"""Many annotators at once, in real Streamlit sessions: nothing lost, nothing over k, no repeats.

One headless Chromium carries every annotator (a context each); they sign in and label by
keyboard concurrently against `annotate serve`: one process on SQLite, and two processes on
two ports sharing one PostgreSQL database (annotators split across them). Afterwards every
acknowledged label is in the database as typed, no item has more than k human labels, and no
annotator was shown an item twice.

Full size, as in bench/bench_load.py (which prints labels per second and submit latency): 20
annotators x 25 items each, 500 labels per backend, about 5 minutes each on the 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import free_port, seed, start_server
from tests.browser.load_helpers import check_invariants, drive, make_items
from tests.conftest import PG_URL, make_test_database

pytestmark = [pytest.mark.browser, pytest.mark.load]

LOAD_ANNOTATORS = 20
LOAD_ITEMS = 25
OVERLAP = 2
SECRET = "load-test-signing-key-" + "k" * 30
NAMES = [f"ann{i:02d}" for i in range(LOAD_ANNOTATORS)]
# Enough items that nobody runs dry, few enough that annotators compete for the same items.
ITEM_COUNT = LOAD_ANNOTATORS * LOAD_ITEMS // OVERLAP + LOAD_ANNOTATORS


@pytest.mark.timeout(2400)
@pytest.mark.parametrize(
    ("backend", "replicas"),
    [
        ("sqlite", 1),
        pytest.param(
            "postgres",
            2,
            marks=pytest.mark.skipif(not PG_URL, reason="ANNOTATE_TEST_POSTGRES_URL is not set"),
        ),
    ],
)
def test_concurrent_annotators_keep_every_guarantee(
    backend: str, replicas: int, tmp_path: Path
) -> None:
    url, drop = make_test_database(backend, tmp_path)
    servers = []
    try:
        seed(
            url,
            make_items(ITEM_COUNT),
            dict.fromkeys(NAMES, "annotator"),
            name="load",
            overlap=OVERLAP,
            seed=11,
        )
        for _ in range(replicas):
            port = free_port()
            servers.append(
                start_server(
                    ["serve", "--port", str(port)],
                    url,
                    tmp_path,
                    port,
                    # 20 people sign in at the same moment; with 2 password checks at a time the
                    # last wait longer than the default 10 s before being asked to retry.
                    env={
                        "ANNOTATE_SECRET_KEY": SECRET,
                        "ANNOTATE_PASSWORD_CHECK_WAIT_SECONDS": "300",
                    },
                )
            )
        result = drive(
            [s.url for s in servers],
            NAMES,
            items=LOAD_ITEMS,
            timeout_s=1800,
            page_timeout_s=180,
        )
        print(result.summary())  # noqa: T201 - the figure is the point of a load test
        check_invariants(url, result, items=LOAD_ITEMS, overlap=OVERLAP)
    finally:
        for server in servers:
            server.stop()
        drop()
