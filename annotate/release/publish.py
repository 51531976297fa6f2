"""Gold releases: publish a campaign's gold set as exports/NAME/vN, list releases, diff two.

A release is immutable and self-describing: selection (selection.py, pure) decides which items
are gold; the writers (release_writers.py, release_card.py) turn them into files in a temporary
folder renamed into place; the manifest records policy, counts, agreement, held-back items, the
diff from the parent and the sha256 of every file. The files are the source of truth; the
database keeps a `Release` row per version for the dashboard (`list_releases`).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from annotate.accounts.auth import require_role
from annotate.errors import NotFound, StorageUnavailable, ValidationProblem
from annotate.release.card import build_manifest, dataset_card
from annotate.release.diff import DiffSummary, ReleaseDiff, diff_lines
from annotate.release.folders import (
    CARD,
    MANIFEST,
    existing_versions,
    file_hashes,
    parse_version,
    publish,
    sha256_file,
    unpublish,
    write_inspect,
    write_schemas,
)
from annotate.release.formats import (
    GOLD_CSV,
    GOLD_JSONL,
    GOLD_PARQUET,
    encode_rows,
    read_jsonl_lines,
    write_csv,
    write_lines,
    write_parquet,
)
from annotate.release.rules import describe, gold_violations
from annotate.release.selection import InclusionPolicy, gold_counts, select_gold
from annotate.review.figures import agreement_report
from annotate.schema import LabelSchema
from annotate.storage import db
from annotate.storage.models import Campaign, User
from annotate.storage.queries import load_labels
from annotate.storage.releases import add_release, list_release_rows, lock_releases
from annotate.table import LabelTable


class ReleaseResult(BaseModel):
    """What `create_release` wrote."""

    dataset: str
    version: int
    parent_version: int | None
    path: str
    gold: int
    held_back: int
    adjudicated: int
    content_hash: str
    manifest_sha256: str
    diff: DiffSummary | None
    rule_violations: int = 0


class ReleaseInfo(BaseModel):
    """One release of a campaign, as the dashboard lists it."""

    version: int
    path: str
    created_at: datetime
    created_by: str | None
    gold: int
    held_back: int
    adjudicated: int
    by_intent: dict[str, int]
    by_right_action: dict[str, int]
    alpha: float | None
    alpha_ci: tuple[float, float] | None
    banded_alpha: float | None
    banded_alpha_ci: tuple[float, float] | None
    diff: DiffSummary | None
    content_hash: str
    manifest_sha256: str


def _agreement(table: LabelTable, actor: User, n_resamples: int) -> dict[str, Any]:
    report = agreement_report(table, actor=actor, n_resamples=n_resamples)
    return {
        "units": "every item with a human label; alpha counts items with two or more",
        "n_items": report.n_items,
        "n_annotators": report.n_annotators,
        "n_resamples": n_resamples,
        "fields": {k: v.model_dump(mode="json") for k, v in report.fields.items()},
        "failure_categories": report.failure_categories.model_dump(mode="json")
        if report.failure_categories is not None
        else None,
    }


def _adjudicated(table: LabelTable) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """By external id: the rules each current adjudication overrode (with a note), and its
    final labels."""
    adj = table.adjudications
    if adj.empty:
        return {}, {}
    ext = table.items["external_id"].to_dict()
    overrides: dict[str, list[str]] = {}
    final: dict[str, dict[str, Any]] = {}
    for row in adj.to_dict("records"):
        key = ext.get(int(row["item_id"]))
        if key is not None:
            overrides[str(key)] = list(row.get("overridden_rules") or [])
            final[str(key)] = dict(row.get("labels") or {})
    return overrides, final


def write_release_files(
    root: Path,
    *,
    rows: Sequence[Mapping[str, Any]],
    schema: LabelSchema,
    dataset: str,
    version: int,
    parent_version: int | None,
    created_at: str,
    created_by: str,
    counts: Mapping[str, Any],
    agreement: Mapping[str, Any],
    policy: Mapping[str, Any],
    held_back: Sequence[Mapping[str, Any]],
    diff_summary: Mapping[str, Any] | None,
    license: str,
    lines: Sequence[str] | None = None,
    source_licenses: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write every file of a release into the empty folder `root`, manifest last.

    `rows` are gold records as JSON dicts, sorted by id (`lines`, if given, their encoded
    JSONL lines). No database: `create_release` calls this inside `publish`; tests and tools
    can build a release from records the same way. Returns the sha256 and size of every file
    but the manifest, as the manifest lists them.
    """
    write_lines(root / GOLD_JSONL, lines if lines is not None else encode_rows(rows))
    write_parquet(root / GOLD_PARQUET, rows, schema)
    write_csv(root / GOLD_CSV, rows, schema)
    write_schemas(root, schema)
    write_inspect(root, rows, schema, dataset=dataset, version=version)
    card = dataset_card(
        dataset=dataset,
        version=version,
        parent_version=parent_version,
        schema=schema,
        rows=rows,
        counts=counts,
        agreement=agreement,
        policy=policy,
        diff_summary=diff_summary,
        license=license,
        source_licenses=source_licenses,
    )
    (root / CARD).write_text(card, encoding="utf-8", newline="\n")
    files = file_hashes(root)
    manifest = build_manifest(
        dataset=dataset,
        version=version,
        parent_version=parent_version,
        created_at=created_at,
        created_by=created_by,
        schema=schema,
        policy=policy,
        counts=counts,
        agreement=agreement,
        held_back=held_back,
        diff_summary=diff_summary,
        content_hash=files[GOLD_JSONL]["sha256"],
        files=files,
    )
    (root / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n"
    )
    return files


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a bulk job, then restore its state.

    A release makes millions of containers (records, their bands and soft labels) and no
    reference cycles to speak of; every full collection walked all of them, 1.5-2.5 s of a
    100,000-item release. Reference counting still frees everything as it goes; cycles made
    meanwhile are collected once the collector runs again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cyclic_gc_paused()
def create_release(
    *,
    session: Session,
    actor: User,
    campaign: Campaign,
    out_dir: Path,
    policy: InclusionPolicy | None = None,
    license: str = "other",
    n_resamples: int = 1000,
    now: datetime | None = None,
    allow_rule_violations: bool = False,
    on_wait: Callable[[str], None] | None = None,
    source_licenses: Mapping[str, str] | None = None,
) -> ReleaseResult:
    """Write the next gold release of `campaign` to `out_dir/NAME/vN`; leads and admins only.

    Atomic (a temporary folder renamed into place: a failure leaves no `vN` and no partial
    files) and never overwriting. Data files are byte-identical for the same database state;
    only manifest.json carries the creation time. Raises ValidationProblem when no item is gold,
    and when gold records break the schema's consistency rules without an override recorded at
    adjudication (listing them), unless `allow_rule_violations`; the manifest's policy records
    that flag and the records released in breach.

    The folder and the database row appear together or not at all: the labels are read
    first, then the session's transaction is committed and a new one takes the write lock
    (`db.begin_write`; `on_wait` hears while it waits) before the version is chosen; the
    folder is renamed into place under that lock and removed again if the row cannot be
    committed. Versions are unique per campaign (the lock, and a unique constraint behind it).
    """
    require_role(actor, "lead", "publish gold releases", session=session)
    table = load_labels(session=session, actor=actor, campaign=campaign, with_text=True)
    schema = table.schema
    selection = select_gold(table, policy)
    if not selection.rows:
        reasons = gold_counts(selection, schema)["held_back_by_reason"]
        listed = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in reasons.items())
        raise ValidationProblem(
            f"Campaign `{campaign.name}` has no gold items yet: {len(selection.held_back)} "
            f"held back ({listed}); label more or adjudicate, then release"
        )
    rows = selection.rows
    overrides, final = _adjudicated(table)
    violations = gold_violations(rows, schema, overrides, final)
    if violations and not allow_rule_violations:
        n_records = len({v.id for v in violations})
        raise ValidationProblem(
            f"Campaign `{campaign.name}`: {n_records} of {len(rows)} gold records break the "
            f"schema's consistency rules with no override recorded:\n{describe(violations)}\n"
            "Adjudicate them (a note overrides a rule), or release anyway with "
            "--allow-rule-violations (the manifest records it)"
        )
    lines = encode_rows(rows)
    counts = gold_counts(selection, schema)
    agreement = _agreement(table, actor, n_resamples)
    policy_info = {
        **selection.policy.model_dump(mode="json"),
        "min_annotations_resolved": selection.min_annotations,
        "allow_rule_violations": allow_rule_violations,
        "rule_violations": [v.model_dump() for v in violations],
    }
    created_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    dataset_dir = out_dir / campaign.name
    ra = agreement["fields"].get(schema.right_action_field, {})

    # Everything above only read. From here on this transaction holds the write lock (SQLite)
    # or the campaign's row lock (PostgreSQL): the version is chosen, the folder published and
    # the row recorded under it, so concurrent releases queue and get distinct versions, and
    # annotators writing meanwhile cannot make the final INSERT fail with "database is locked".
    session.commit()
    db.begin_write(session, on_wait=on_wait)
    recorded = lock_releases(session=session, campaign=campaign)
    on_disk = existing_versions(dataset_dir)
    version = max([0, *on_disk, *recorded]) + 1
    parent = on_disk[-1] if on_disk else None
    diff_summary = None
    if parent is not None:
        before = read_jsonl_lines(dataset_dir / f"v{parent}" / GOLD_JSONL)
        diff_summary = diff_lines(before, lines).summary

    written: dict[str, dict[str, Any]] = {}

    def write(root: Path) -> None:
        written.update(
            write_release_files(
                root,
                rows=rows,
                schema=schema,
                dataset=campaign.name,
                version=version,
                parent_version=parent,
                created_at=created_at,
                created_by=actor.name,
                counts=counts,
                agreement=agreement,
                policy=policy_info,
                held_back=[h.model_dump() for h in selection.held_back],
                diff_summary=diff_summary.model_dump() if diff_summary else None,
                license=license,
                lines=lines,
                source_licenses=source_licenses,
            )
        )

    path = publish(dataset_dir, version, write)
    # The folder is in place; it stays only if the row commits (a failure below takes it back).
    try:
        manifest_sha = sha256_file(path / MANIFEST)
        content_hash = written[GOLD_JSONL]["sha256"]  # hashed as it was written, not read again
        add_release(
            session=session,
            campaign=campaign,
            version=version,
            path=str(path.resolve()),
            manifest_sha256=manifest_sha,
            created_by=actor.id,
            summary={
                **{k: counts[k] for k in ("gold", "held_back", "adjudicated")},
                "by_intent": counts["by_intent"],
                "by_right_action": counts["by_right_action"],
                "alpha": ra.get("alpha"),
                "alpha_ci": ra.get("ci"),
                "banded_alpha": ra.get("banded_alpha"),
                "banded_alpha_ci": ra.get("banded_ci"),
                "parent_version": parent,
                "diff": diff_summary.model_dump() if diff_summary else None,
                "content_hash": content_hash,
            },
        )
        session.commit()
    except BaseException as exc:
        session.rollback()
        unpublish(path)
        if isinstance(exc, (OperationalError, IntegrityError)):
            raise StorageUnavailable(
                f"Release v{version} of `{campaign.name}` could not be recorded in the "
                f"database ({exc.orig}); its folder was removed, nothing was released"
            ) from exc
        raise
    return ReleaseResult(
        dataset=campaign.name,
        version=version,
        parent_version=parent,
        path=str(path),
        gold=counts["gold"],
        held_back=counts["held_back"],
        adjudicated=counts["adjudicated"],
        content_hash=content_hash,
        manifest_sha256=manifest_sha,
        diff=diff_summary,
        rule_violations=len(violations),
    )


def list_releases(*, session: Session, actor: User, campaign: Campaign) -> list[ReleaseInfo]:
    """Every recorded release of `campaign`, oldest first, with counts and alpha; leads only.

    `alpha` is nominal Krippendorff's alpha on the right action over the campaign's human
    labels at release time, `banded_alpha` the same under the band distance; None where
    undefined.
    """
    require_role(actor, "lead", "see gold releases", session=session)
    out = []
    for row, creator in list_release_rows(session=session, campaign=campaign):
        s = row.summary or {}
        out.append(
            ReleaseInfo(
                version=row.version,
                path=row.path,
                created_at=row.created_at,
                created_by=creator,
                gold=int(s.get("gold", 0)),
                held_back=int(s.get("held_back", 0)),
                adjudicated=int(s.get("adjudicated", 0)),
                by_intent=s.get("by_intent") or {},
                by_right_action=s.get("by_right_action") or {},
                alpha=s.get("alpha"),
                alpha_ci=s.get("alpha_ci"),
                banded_alpha=s.get("banded_alpha"),
                banded_alpha_ci=s.get("banded_alpha_ci"),
                diff=s.get("diff"),
                content_hash=str(s.get("content_hash", "")),
                manifest_sha256=row.manifest_sha256,
            )
        )
    return out


def diff_releases(*, out_dir: Path, dataset: str, old: str, new: str) -> ReleaseDiff:
    """Items added, removed and changed from release `old` to `new` of `dataset` (`v1` or `1`).

    Reads the releases' gold.jsonl under `out_dir/dataset`; NotFound names a missing one.
    """
    versions = [parse_version(old), parse_version(new)]
    contents: list[list[str]] = []
    for v in versions:
        folder = out_dir / dataset / f"v{v}"
        if not folder.is_dir():
            known = ", ".join(f"v{n}" for n in existing_versions(out_dir / dataset)) or "none"
            raise NotFound(f"No release v{v} of `{dataset}` in {out_dir} (releases: {known})")
        contents.append(read_jsonl_lines(folder / GOLD_JSONL))
    return diff_lines(
        contents[0], contents[1], old_name=f"v{versions[0]}", new_name=f"v{versions[1]}"
    )
