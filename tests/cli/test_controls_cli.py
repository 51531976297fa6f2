"""`annotate controls mark|unmark|list|report|reset` and `annotate campaign set` through the CLI."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from annotate.cli import app
from annotate.review import adjudication
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Campaign
from tests.conftest import full_labels
from tests.control_helpers import answer, control_campaign

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_controls_from_the_command_line(engine: Engine, schema: LabelSchema) -> None:
    url = engine.url.render_as_string(hide_password=False)
    setup = control_campaign(engine, schema, real=4, controls=0)
    with db.session_scope(engine) as s:
        from sqlmodel import select

        from annotate.storage.models import Item

        item = s.exec(select(Item).where(Item.external_id == "r-000")).one()
        adjudication.adjudicate(
            session=s,
            actor=setup.lead,
            item_id=item.id or 0,
            labels=schema.normalize_labels(full_labels()),
        )
    # An item not adjudicated: a clear error, nothing marked.
    code, _, err = run("controls", "mark", "--campaign", "ctl", "r-000", "r-001", "--db", url)
    assert code == 1 and "adjudicate first: `r-001`" in err and "Traceback" not in err
    code, out, _ = run("controls", "list", "--campaign", "ctl", "--json", "--db", url)
    assert code == 0 and json.loads(out) == []
    code, out, err = run("controls", "mark", "--campaign", "ctl", "r-000", "--db", url)
    assert code == 0, err
    assert "1 item(s) marked" in out
    code, out, _ = run("controls", "list", "--campaign", "ctl", "--json", "--db", url)
    rows = json.loads(out)
    assert [(r["item"], r["marked_by"], r["answers"]) for r in rows] == [
        ("r-000", "command line", 0)
    ]
    code, out, err = run(
        "campaign", "set", "ctl", "--control-rate", "1", "--qualification-items", "1",
        "--qualification-threshold", "0.9", "--db", url,
    )  # fmt: skip
    assert code == 0, err
    assert "control rate 1.0, qualification 1 items at 0.9" in out
    code, _, err = run("campaign", "set", "ctl", "--control-rate", "2", "--db", url)
    assert code == 1 and "control rate must be between 0.0 and 1.0, got 2.0" in err
    with db.session_scope(engine) as s:
        campaign = s.get(Campaign, setup.campaign.id)  # as the settings are now
    assert campaign is not None
    got = answer(engine, setup.people["alice"], campaign, right_action="clarify")
    assert got is not None and got.item.external_id == "r-000"
    code, out, err = run("controls", "report", "--campaign", "ctl", "--json", "--db", url)
    assert code == 0, err
    report = {r["annotator"]: r for r in json.loads(out)["annotators"]}
    assert report["alice"]["answers"] == 1 and report["alice"]["qualification"] == "failed"
    assert report["alice"]["credit"] == schema.credit("answer", "clarify")
    code, out, err = run("controls", "reset", "--campaign", "ctl", "alice", "--db", url)
    assert code == 0, err
    code, out, _ = run("controls", "report", "--campaign", "ctl", "--db", url)
    assert "alice" in out and "0/1" in out
    code, out, err = run("controls", "unmark", "--campaign", "ctl", "r-000", "--db", url)
    assert code == 0 and "1 item(s) no longer controls" in out
