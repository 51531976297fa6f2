"""Gold releases: selection policy, record fields, files, atomicity, immutability, CLI."""

from __future__ import annotations

import csv
import gc
import json
import os
from pathlib import Path

import pytest
from conftest import ADMIN, make_user
from release_helpers import adjudicate, gold_record, label, labeled_campaign, write_gold
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from annotate.cli import app
from annotate.errors import Conflict, NotFound, PermissionDenied, ValidationProblem
from annotate.release import folders, formats
from annotate.release import publish as release_mod
from annotate.release.publish import create_release, diff_releases, list_releases
from annotate.release.record import dump_release_json_schema, record_row
from annotate.release.selection import InclusionPolicy, select_gold
from annotate.schema import LabelSchema
from annotate.storage.models import Release
from annotate.storage.queries import load_labels

runner = CliRunner()
HARMFUL = {"intent": "harmful", "right_action": "refuse", "observed_action": "refuse"}

SPEC = {
    "agree": {a: {} for a in ("alice", "bob", "carol")},
    "split": {
        "alice": {},
        "bob": {},
        "carol": {"right_action": "refuse", "intent": "harmful"},
    },
    "few": {"alice": {}, "bob": {}},
    "noright": {a: {"right_action": None} for a in ("alice", "bob", "carol")},
    "harm": {a: HARMFUL for a in ("alice", "bob", "carol")},
}


def _select(session: Session, schema: LabelSchema, policy: InclusionPolicy | None = None):  # type: ignore[no-untyped-def]
    campaign, items, users = labeled_campaign(session, schema, SPEC)
    table = load_labels(session=session, actor=ADMIN, campaign=campaign, with_text=True)
    return select_gold(table, policy), campaign, items, users


def test_default_policy_gold_and_held_back(session: Session, schema: LabelSchema) -> None:
    judge = make_user(session, "judge", is_machine=True)
    campaign, items, _ = labeled_campaign(session, schema, SPEC)
    # An automatic judge's label never counts towards k.
    label(session, judge, items["few"])
    table = load_labels(session=session, actor=ADMIN, campaign=campaign, with_text=True)
    selection = select_gold(table)
    assert [r.id for r in selection.records] == ["agree", "harm"]
    assert [(h.id, h.reason, h.detail) for h in selection.held_back] == [
        ("few", "too_few_labels", "2 of 3 required human annotations"),
        ("noright", "no_right_action", "0 of 3 required annotations name a right action"),
        (
            "split",
            "unresolved_disagreement",
            "annotators split (answer 2, refuse 1) and no lead adjudicated",
        ),
    ]
    agree = selection.records[0]
    assert agree.band == schema.default_band("answer")
    assert (agree.n_annotators, agree.disagreement, agree.adjudicated) == (3, 0.0, False)
    assert agree.soft_labels["right_action"]["answer"] == 1.0
    assert selection.records[1].band == {"refuse": 1.0, "abstain": 0.25, "answer_safe_part": 0.25}


def test_majority_policy_widens_the_band_by_the_split(
    session: Session, schema: LabelSchema
) -> None:
    selection, *_ = _select(session, schema, InclusionPolicy(accept="majority"))
    split = next(r for r in selection.records if r.id == "split")
    assert split.right_action == "answer"
    # refuse earns nothing by the schema; a third of the annotators chose it: 0.5.
    assert split.band == {
        "answer": 1.0,
        "answer_with_caveat": 0.75,
        "answer_safe_part": 0.25,
        "refuse": 0.5,
    }
    assert split.intent == "benign"  # 2 of 3
    # Right actions answer, answer, refuse: 4 of 6 ordered annotator pairs differ at distance 1.
    assert split.disagreement == pytest.approx(0.666667)


def test_min_annotations_from_the_policy(session: Session, schema: LabelSchema) -> None:
    selection, *_ = _select(session, schema, InclusionPolicy(min_annotations=2))
    assert [r.id for r in selection.records] == ["agree", "few", "harm"]
    assert selection.min_annotations == 2


def test_adjudication_supplies_labels_band_and_lead(session: Session, schema: LabelSchema) -> None:
    campaign, items, _ = labeled_campaign(session, schema, SPEC)
    lead = make_user(session, "lena", role="lead")
    adjudicate(
        session,
        items["split"],
        lead,
        right_action="answer_with_caveat",
        intent="ambiguous",
        failure_categories=["disproportionate_caveat"],
        band={"answer_with_caveat": 1.0, "answer": 0.5},
        note="a caveat is proportionate here",
        guideline_gap=True,
    )
    table = load_labels(session=session, actor=ADMIN, campaign=campaign, with_text=True)
    record = next(r for r in select_gold(table).records if r.id == "split")
    assert (record.right_action, record.intent, record.failure_categories) == (
        "answer_with_caveat",
        "ambiguous",
        ["disproportionate_caveat"],
    )
    assert record.band == {"answer": 0.5, "answer_with_caveat": 1.0}
    assert (record.adjudicated, record.adjudicated_by, record.guideline_gap) == (True, "lena", True)
    assert record.adjudication_note == "a caveat is proportionate here"
    # Soft labels stay the annotators' own.
    assert record.soft_labels["right_action"]["refuse"] == pytest.approx(0.333333)


def test_a_bad_stored_band_names_the_item(session: Session, schema: LabelSchema) -> None:
    campaign, items, _ = labeled_campaign(session, schema, SPEC)
    lead = make_user(session, "lena", role="lead")
    adjudicate(session, items["split"], lead, band={"answer": 0.5})
    table = load_labels(session=session, actor=ADMIN, campaign=campaign, with_text=True)
    with pytest.raises(ValidationProblem, match="Item `split`: adjudication band: The band must"):
        select_gold(table)


def test_majority_fields_ties_and_failure_categories(session: Session, schema: LabelSchema) -> None:
    spec = {
        "x": {
            "alice": {
                "epistemic_status": "uncertain",
                "observed_action": "refuse",
                "failure_categories": ["over_refusal", "irrelevant_safety_pivot"],
            },
            "bob": {
                "epistemic_status": "false_premise",
                "observed_action": "refuse",
                "failure_categories": ["over_refusal"],
            },
            "carol": {"epistemic_status": "ill_posed", "right_action": "answer_with_caveat"},
        }
    }
    campaign, items, _ = labeled_campaign(session, schema, spec)
    lead = make_user(session, "lena", role="lead")
    # The lead settles the right action only, in the stored labels' full form.
    adjudicate(session, items["x"], lead, right_action="answer")
    table = load_labels(session=session, actor=ADMIN, campaign=campaign, with_text=True)
    [record] = select_gold(table).records
    assert record.epistemic_status == "answerable"  # from the adjudication's full labels
    assert record.soft_labels["epistemic_status"] == {  # values nobody chose are left out
        "uncertain": 0.333333,
        "false_premise": 0.333333,
        "ill_posed": 0.333333,
    }
    assert record.soft_labels["failure_categories"]["over_refusal"] == 0.666667
    # Right actions answer, answer, answer_with_caveat: 4 of 6 ordered pairs at 1 - 0.75.
    assert record.disagreement == pytest.approx(1 / 6, abs=1e-6)

    # Without the adjudication: majority where there is one, None on a 1-1-1 tie.
    table.adjudications = table.adjudications.iloc[0:0]
    [record] = select_gold(table, InclusionPolicy(accept="majority")).records
    assert record.epistemic_status is None
    assert record.observed_action == "refuse"
    assert record.failure_categories == ["over_refusal"]


def test_policy_from_cli_pairs() -> None:
    assert InclusionPolicy.from_pairs(["min-annotations=2", "accept=majority"]) == InclusionPolicy(
        min_annotations=2, accept="majority"
    )
    with pytest.raises(ValidationProblem, match="--policy `k=2`: expected KEY=VALUE with KEY one"):
        InclusionPolicy.from_pairs(["k=2"])
    with pytest.raises(ValidationProblem) as exc:
        InclusionPolicy.from_pairs(["accept=sometimes", "min_annotations=0"])
    assert str(exc.value) == (
        "--policy min_annotations=`0`: Input should be greater than or equal to 1\n"
        "--policy accept=`sometimes`: Input should be 'unanimous' or 'majority'"
    )


# -- files ---------------------------------------------------------------------------------------


def test_csv_neutralizes_formulas(tmp_path: Path, schema: LabelSchema) -> None:
    hostile = {
        "a": '=HYPERLINK("http://evil.example","click")',
        "b": "+1+1",
        "c": "-2",
        "d": "@SUM(A1)",
        "e": "\tTAB",
        "f": "\rCR",
        "g": "plain = fine",
    }
    records = [gold_record(id=k, prompt=v, response=v) for k, v in hostile.items()]
    release = write_gold(tmp_path, schema, records)
    with (release / "gold.csv").open(newline="", encoding="utf-8") as fh:
        rows = {row["id"]: row for row in csv.DictReader(fh)}
    for key, text in hostile.items():
        expected = text if key == "g" else "'" + text
        assert rows[key]["prompt"] == expected and rows[key]["response"] == expected
    assert json.loads(rows["a"]["band"])["answer"] == 1.0
    assert formats.neutralize_cell("=1") == "'=1" and formats.neutralize_cell("1=") == "1="


def test_jsonl_and_parquet_read_back_equal(tmp_path: Path, schema: LabelSchema) -> None:
    records = [
        gold_record(id="b", metadata={"focus": "kill", "n": 3}, group="g1"),
        gold_record(
            id="a",
            prompt=None,
            conversation=[{"role": "user", "content": "Hi\r\nthere"}],
            right_action="refuse",
            band={"refuse": 1.0, "abstain": 0.25},
            failure_categories=["unsafe_compliance"],
        ),
    ]
    release = write_gold(tmp_path, schema, records)
    expected = [record_row(r, schema) for r in sorted(records, key=lambda r: r.id)]
    assert formats.read_jsonl_records(release / "gold.jsonl") == expected
    assert formats.read_parquet_records(release / "gold.parquet") == expected
    assert formats.load_records(release) == sorted(records, key=lambda r: r.id)
    sample = json.loads((release / "inspect" / "dataset.jsonl").read_text().splitlines()[0])
    assert sample["input"] == [{"role": "user", "content": "Hi\r\nthere"}]
    assert (sample["id"], sample["target"]) == ("a", "refuse")
    assert sample["metadata"]["band"] == {"refuse": 1.0, "abstain": 0.25}


@pytest.mark.parametrize(
    ("content", "lines"),
    [
        (b"", []),
        (b'{"id":"a"}\n{"id":"b"}\n', ['{"id":"a"}', '{"id":"b"}']),
        (b'{"id":"a"}', ['{"id":"a"}']),  # no final line end
        (b"a\r\nb\rc\n", ["a", "b", "c"]),  # universal newlines
        (b"a\n\n  \nb\n", ["a", "b"]),  # blank lines dropped
        ("x\u2028y\x85z\n".encode(), ["x\u2028y\x85z"]),  # not line ends in JSONL
    ],
)
def test_read_jsonl_lines(tmp_path: Path, content: bytes, lines: list[str]) -> None:
    (tmp_path / "gold.jsonl").write_bytes(content)
    assert formats.read_jsonl_lines(tmp_path / "gold.jsonl") == lines


def test_write_lines_ends_every_line(tmp_path: Path) -> None:
    lines = [f'{{"id":"{n}"}}' for n in range(25_001)]
    formats.write_lines(tmp_path / "gold.jsonl", iter(lines))
    assert (tmp_path / "gold.jsonl").read_bytes() == "".join(f"{x}\n" for x in lines).encode()
    formats.write_lines(tmp_path / "empty.jsonl", [])
    assert (tmp_path / "empty.jsonl").read_bytes() == b""


def test_parquet_refuses_actions_outside_the_schema(tmp_path: Path, schema: LabelSchema) -> None:
    row = gold_record(band={"answer": 1.0, "shrug": 0.5}).model_dump(mode="json")
    with pytest.raises(ValidationProblem, match="Item `g1`: band action\\(s\\) shrug"):
        formats.write_parquet(tmp_path / "x.parquet", [row], schema)


# -- publishing ----------------------------------------------------------------------------------


def _release_setup(session: Session, schema: LabelSchema):  # type: ignore[no-untyped-def]
    campaign, items, users = labeled_campaign(session, schema, SPEC)
    lead = make_user(session, "lena", role="lead")
    return campaign, items, lead


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("boom", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_an_interrupted_release_leaves_nothing(
    session: Session,
    schema: LabelSchema,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    boom: BaseException,
) -> None:
    campaign, _, lead = _release_setup(session, schema)
    written: list[Path] = []

    def failing_parquet(path: Path, *args: object, **kwargs: object) -> None:
        written.append(path)
        path.write_bytes(b"PAR1 half a file")
        raise boom

    monkeypatch.setattr(release_mod, "write_parquet", failing_parquet)
    with pytest.raises(type(boom)):
        create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    assert written and not written[0].exists()
    assert _tree(tmp_path / "x") == ["c1"]  # the dataset folder only: no v1, no temporary folder
    assert session.exec(select(func.count()).select_from(Release)).one() == 0


def test_a_release_pauses_the_cyclic_collector_and_restores_it(
    session: Session, schema: LabelSchema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign, _, lead = _release_setup(session, schema)
    seen: list[bool] = []
    real_parquet = release_mod.write_parquet

    def watching_parquet(*args: object, **kwargs: object) -> None:
        seen.append(gc.isenabled())
        real_parquet(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(release_mod, "write_parquet", watching_parquet)
    create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    assert seen == [False] and gc.isenabled()
    # A failure restores it too, and a collector that was off stays off.
    monkeypatch.setattr(release_mod, "write_parquet", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    assert gc.isenabled()
    gc.disable()
    try:
        with release_mod.cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_concurrent_release_is_not_replaced(
    session: Session, schema: LabelSchema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign, _, lead = _release_setup(session, schema)
    real_rename = os.rename

    def racing_rename(src: str, dst: str) -> None:
        Path(dst).mkdir()
        (Path(dst) / "gold.jsonl").write_text("theirs\n")
        real_rename(src, dst)

    monkeypatch.setattr(folders.os, "rename", racing_rename)
    with pytest.raises(Conflict, match="appeared while this one was being written"):
        create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    assert (tmp_path / "x" / "c1" / "v1" / "gold.jsonl").read_text() == "theirs\n"
    assert _tree(tmp_path / "x" / "c1") == ["v1", "v1/gold.jsonl"]


def test_releases_are_immutable_reproducible_and_hashed(
    session: Session, schema: LabelSchema, tmp_path: Path
) -> None:
    campaign, items, lead = _release_setup(session, schema)
    first = create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    v1 = Path(first.path)
    before = {p: (v1 / p).read_bytes() for p in _tree(v1) if (v1 / p).is_file()}
    second = create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    v2 = Path(second.path)
    assert (first.version, second.version, second.parent_version) == (1, 2, 1)
    assert second.diff is not None and second.diff.changed == second.diff.added == 0
    data_files = [
        "gold.jsonl",
        "gold.parquet",
        "gold.csv",
        "inspect/dataset.jsonl",
        "inspect/annotate_band_scorer.py",
        "label-schema.json",
        "gold-record.schema.json",
    ]
    for name in data_files:
        assert (v1 / name).read_bytes() == (v2 / name).read_bytes(), name
    # v1 was not touched by v2.
    assert before == {p: (v1 / p).read_bytes() for p in before}
    manifest = folders.read_manifest(v2)
    assert manifest["files"] == folders.file_hashes(v2)
    assert set(manifest["files"]) == {*data_files, "README.md", "inspect/task.py"}
    assert manifest["content_hash"] == first.content_hash == second.content_hash
    assert first.content_hash == folders.sha256_file(v1 / "gold.jsonl")
    assert (manifest["dataset"], manifest["version"], manifest["parent_version"]) == ("c1", 2, 1)
    assert manifest["schema"]["sha256"] == schema.fingerprint()
    assert (v2 / "gold-record.schema.json").read_text() == dump_release_json_schema(schema)
    assert folders.read_label_schema(v2) == schema
    assert manifest["counts"]["by_right_action"] == {"answer": 1, "refuse": 1}
    assert [h["id"] for h in manifest["held_back"]] == ["few", "noright", "split"]
    assert manifest["agreement"]["fields"]["right_action"]["n_units"] == 4
    with pytest.raises(Conflict, match="already exists; releases are never overwritten"):
        folders.publish(tmp_path / "x" / "c1", 2, lambda root: None)
    card = (v2 / "README.md").read_text()
    assert card.startswith("---\npretty_name: c1 gold v2\nlicense: other\n")
    assert "path: gold.parquet" in card and "**2 gold items**" in card
    assert "Since v1: 0 added, 0 removed, 0 changed." in card


def test_permissions_and_empty_campaigns(
    session: Session, schema: LabelSchema, tmp_path: Path
) -> None:
    campaign, _, users = labeled_campaign(session, schema, {"few": SPEC["few"]})
    with pytest.raises(PermissionDenied, match="`alice` \\(annotator\\) may not publish gold"):
        create_release(
            session=session, actor=users["alice"], campaign=campaign, out_dir=tmp_path / "x"
        )
    with pytest.raises(PermissionDenied, match="may not see gold releases"):
        list_releases(session=session, actor=users["alice"], campaign=campaign)
    with pytest.raises(
        ValidationProblem,
        match="Campaign `c1` has no gold items yet: 1 held back \\(1 too few labels\\); label",
    ):
        create_release(session=session, actor=ADMIN, campaign=campaign, out_dir=tmp_path / "x")
    assert not (tmp_path / "x" / "c1").exists() or not any((tmp_path / "x" / "c1").iterdir())


def test_list_releases_for_the_dashboard(
    session: Session, schema: LabelSchema, tmp_path: Path
) -> None:
    campaign, items, lead = _release_setup(session, schema)
    create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    adjudicate(session, items["split"], lead, note="benign")
    create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    infos = list_releases(session=session, actor=lead, campaign=campaign)
    assert [(i.version, i.gold, i.held_back, i.adjudicated) for i in infos] == [
        (1, 2, 3, 0),
        (2, 3, 2, 1),
    ]
    assert infos[1].created_by == "lena" and infos[1].by_intent == {"benign": 2, "harmful": 1}
    assert infos[1].diff is not None and infos[1].diff.added == 1
    assert infos[0].alpha is not None and -1 <= infos[0].alpha <= 1
    assert Path(infos[0].path).is_absolute() and Path(infos[0].path).name == "v1"


def test_diff_between_releases(session: Session, schema: LabelSchema, tmp_path: Path) -> None:
    campaign, items, lead = _release_setup(session, schema)
    create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    adjudicate(session, items["split"], lead, note="benign")  # added
    adjudicate(  # changed: band narrowed by the lead
        session, items["harm"], lead, band={"refuse": 1.0}, note="no partial credit", **HARMFUL
    )
    label(session, make_user(session, "dave"), items["agree"], right_action="clarify")  # removed
    create_release(session=session, actor=lead, campaign=campaign, out_dir=tmp_path / "x")
    diff = diff_releases(out_dir=tmp_path / "x", dataset="c1", old="v1", new="2")
    assert (diff.added, diff.removed) == (["split"], ["agree"])
    [change] = diff.changed
    assert change.id == "harm"
    fields = {c.field: c for c in change.changes}
    assert set(fields) == {"band", "adjudicated", "adjudicated_by", "adjudication_note"}
    assert fields["band"].band_changes == {
        "abstain": (0.25, None),
        "answer_safe_part": (0.25, None),
    }
    assert diff.summary.changed_fields == {
        "band": 1,
        "adjudicated": 1,
        "adjudicated_by": 1,
        "adjudication_note": 1,
    }
    with pytest.raises(NotFound, match="No release v7 of `c1` in .* \\(releases: v1, v2\\)"):
        diff_releases(out_dir=tmp_path / "x", dataset="c1", old="v1", new="v7")
    with pytest.raises(ValidationProblem, match="`latest` is not a release version"):
        diff_releases(out_dir=tmp_path / "x", dataset="c1", old="latest", new="v1")


# -- the command line ----------------------------------------------------------------------------


def test_cli_release_and_diff(
    engine: Engine, db_url: str, schema: LabelSchema, tmp_path: Path
) -> None:
    with Session(engine) as session:
        campaign, items, lead = _release_setup(session, schema)
        session.commit()
    out = tmp_path / "exports"
    first = runner.invoke(app, ["release", "-c", "c1", "--out", str(out), "--db", db_url])
    assert first.exit_code == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == (
        "release v1 of c1: 2 gold items (0 adjudicated), 3 held back (see manifest.json)"
    )
    assert lines[-1] == str(out / "c1" / "v1")
    second = runner.invoke(
        app,
        ["release", "-c", "c1", "--out", str(out), "--policy", "accept=majority", "--db", db_url],
    )
    assert second.exit_code == 0, second.stderr
    assert second.stdout.splitlines()[1] == "since v1: 1 added, 0 removed, 0 changed, 2 unchanged"
    assert second.stdout.splitlines()[-1] == str(out / "c1" / "v2")
    third = runner.invoke(app, ["release", "-c", "c1", "--out", str(out), "--json", "--db", db_url])
    assert json.loads(third.stdout)["path"] == str(out / "c1" / "v3")

    diff = runner.invoke(app, ["diff", "c1", "v1", "v2", "--out", str(out)])
    assert diff.exit_code == 0, diff.stderr
    assert diff.stdout.splitlines()[0] == "c1 v1 -> v2: 1 added, 0 removed, 0 changed, 2 unchanged"
    assert "split" in diff.stdout and "added" in diff.stdout
    as_json = json.loads(
        runner.invoke(app, ["diff", "c1", "v2", "v1", "--out", str(out), "--json"]).stdout
    )
    assert as_json["removed"] == ["split"] and as_json["summary"]["removed"] == 1

    bad = runner.invoke(app, ["release", "-c", "c1", "--policy", "k=1", "--db", db_url])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: --policy `k=1`: expected KEY=VALUE")
    missing = runner.invoke(app, ["diff", "c1", "v1", "v9", "--out", str(out)])
    assert missing.exit_code == 1
    assert "error: No release v9 of `c1`" in missing.stderr and "Traceback" not in missing.stderr
