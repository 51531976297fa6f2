"""The claim-scale benchmark (bench/bench_claim_scale.py) times what it says: the first claim of
each annotator apart from the later ones, every claim followed by its submit, rounds that add
to the same campaign, and the server's CPU only where the backends can be read."""

from __future__ import annotations

from sqlalchemy import func, text
from sqlmodel import select

from annotate.storage import db
from annotate.storage.models import Annotation
from bench.bench_claim_scale import Claims, backend_cpu_ms, seed


def test_rounds_add_claims_and_labels(db_url: str) -> None:
    seed(db_url, 30, 2, 1)
    run = Claims(db_url, 2)
    try:
        run.claim_and_submit(5)
        run.claim_and_submit(3)
        assert len(run.first) == 2
        assert len(run.later) == 6
        assert all(wall > 0 and cpu >= 0 for wall, cpu in run.first)
        with db.session_scope(run.engine) as s:
            stored = s.exec(select(func.count(func.distinct(Annotation.item_id)))).one()
        assert stored == 8  # k = 1: every claim took a fresh item
        server = [x for _, _, x in run.later]
        line = run.figures(since=4)
        assert line.startswith("wall ") and " cpu " in line
        if run.engine.dialect.name == "sqlite":
            assert server == [None] * 6
            assert backend_cpu_ms(run.engine) is None
            assert "server" not in line
        elif all(x is not None for x in server):
            assert all(x is not None and x >= 0 for x in server)
            assert "server cpu" in line and "cpu+server" in line
        else:  # a server on another machine: its backends cannot be read from here
            assert server == [None] * 6 and "server" not in line
    finally:
        run.engine.dispose()


def test_server_cpu_counts_only_the_runs_own_backends(db_url: str) -> None:
    # Another client of the same database (a parallel test's) works, then leaves: its
    # backend's CPU must neither count nor vanish from the run's figure (a negative delta).
    seed(db_url, 4, 1, 1)
    run = Claims(db_url, 1)
    other = db.make_engine(db_url)
    try:
        if run.engine.dialect.name != "postgresql":
            assert backend_cpu_ms(run.engine) is None
            return
        with other.connect() as conn:
            conn.execute(text("SELECT count(*) FROM generate_series(1, 3000000)")).one()
            before = backend_cpu_ms(run.engine)
        other.dispose()  # its backend exits
        after = backend_cpu_ms(run.engine)
        assert before is not None and after is not None
        assert 0 <= after - before < 50
    finally:
        other.dispose()
        run.engine.dispose()
