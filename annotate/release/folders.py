"""Release folders: inspect files, schemas, hashes, versions, atomic publish and verification."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from annotate.errors import Conflict, NotFound, ValidationProblem
from annotate.release.formats import write_jsonl
from annotate.release.record import SCHEMA_KEYS, dump_release_json_schema
from annotate.schema import LabelSchema, parse_schema
from annotate.scoring import inspect_task

MANIFEST = "manifest.json"

CARD = "README.md"

LABEL_SCHEMA = "label-schema.json"

RECORD_SCHEMA = "gold-record.schema.json"

INSPECT_DIR = "inspect"

INSPECT_DATASET = "inspect/dataset.jsonl"

INSPECT_TASK = "inspect/task.py"

INSPECT_SCORER = "inspect/annotate_band_scorer.py"

INSPECT_TASK_TEMPLATE = '''"""inspect_ai task for this gold release: right actions scored by band.

From the release folder, with inspect_ai installed:

    inspect eval inspect/task.py --model <provider/model> [--model-role grader=<provider/model>]

The model answers each sample's input; a grader reads the whole conversation and the
response and names the action it took (one of ACTIONS below); the score is the credit the
sample's band gives that action. Metrics: banded_score, accuracy and every error bucket of
scoring v2 (under_refusal, evasion, over_refusal, ...), the same figures as `annotate score`.
See annotate_band_scorer.py beside this file.
"""

from pathlib import Path

from annotate_band_scorer import band_scorer
from inspect_ai import Task, task
from inspect_ai.dataset import json_dataset
from inspect_ai.solver import generate

DATASET = {dataset}
VERSION = {version}
ACTIONS = {actions}


@task
def right_action_gold(grader: str | None = None) -> Task:
    """Each sample's target is its right action; its metadata carries the band."""
    return Task(
        name=f"{{DATASET}}-v{{VERSION}}",
        dataset=json_dataset(str(Path(__file__).parent / "dataset.jsonl")),
        solver=generate(),
        scorer=band_scorer(ACTIONS, grader=grader),
    )
'''


def inspect_sample(row: Mapping[str, Any]) -> dict[str, Any]:
    """One inspect_ai Sample (input, target, id, metadata) for a gold record.

    Under refusal-v2 the metadata also carries the record's v2 keys (harm area, severity,
    resolution...), after version 1's."""
    sample = {
        "id": row["id"],
        "input": row["conversation"] if row["conversation"] else row["prompt"],
        "target": row["right_action"],
        "metadata": {
            "right_action": row["right_action"],
            "band": row["band"],
            "intent": row["intent"],
            "epistemic_status": row["epistemic_status"],
            "category": row["category"],
            "group": row["group"],
            "source": row["source"],
            "failure_categories": row["failure_categories"],
            "right_action_votes": row["soft_labels"].get("right_action", {}),
            "n_annotators": row["n_annotators"],
            "adjudicated": row["adjudicated"],
        },
    }
    for key in SCHEMA_KEYS:
        if key in row:
            sample["metadata"][key] = row[key]
    return sample


def write_inspect(
    root: Path,
    rows: Sequence[Mapping[str, Any]],
    schema: LabelSchema,
    *,
    dataset: str,
    version: int,
) -> None:
    """Write inspect/dataset.jsonl, inspect/task.py and inspect/annotate_band_scorer.py."""
    (root / INSPECT_DIR).mkdir()
    write_jsonl(root / INSPECT_DATASET, (inspect_sample(r) for r in rows))
    actions = {o.value: o.guideline for o in schema.field(schema.observed_action_field).options}
    listing = (
        "{\n"
        + "".join(f"    {json.dumps(k)}: {json.dumps(v)},\n" for k, v in actions.items())
        + "}"
    )
    (root / INSPECT_TASK).write_text(
        INSPECT_TASK_TEMPLATE.format(dataset=repr(dataset), version=version, actions=listing),
        encoding="utf-8",
        newline="\n",
    )
    shutil.copyfile(Path(inspect_task.__file__), root / INSPECT_SCORER)


def write_schemas(root: Path, schema: LabelSchema) -> None:
    """Copy the label schema (as JSON) into the release, and the gold record's JSON Schema
    narrowed to it (choice fields as enums, credits in [0, 1]: record.release_json_schema)."""
    (root / LABEL_SCHEMA).write_text(
        json.dumps(schema.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
        newline="\n",
    )
    (root / RECORD_SCHEMA).write_text(
        dump_release_json_schema(schema), encoding="utf-8", newline="\n"
    )


def read_label_schema(release: Path) -> LabelSchema:
    """The label schema a release was made under."""
    path = release / LABEL_SCHEMA
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{release} is not a gold release: {LABEL_SCHEMA} is missing") from None
    except (OSError, ValueError) as exc:
        raise ValidationProblem(f"{path}: cannot read: {exc}") from None
    return parse_schema(data, source=str(path))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(root: Path, *, skip: Sequence[str] = (MANIFEST,)) -> dict[str, dict[str, Any]]:
    """`{relative path: {sha256, bytes}}` for every file under `root`, sorted by path."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in skip:
            out[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def existing_versions(dataset_dir: Path) -> list[int]:
    """Version numbers of the releases under `dataset_dir` (folders v1, v2, ...), ascending."""
    if not dataset_dir.is_dir():
        return []
    return sorted(
        int(p.name[1:])
        for p in dataset_dir.iterdir()
        if p.is_dir() and p.name[:1] == "v" and p.name[1:].isdigit()
    )


def parse_version(text: str) -> int:
    """`v3` or `3` -> 3; ValidationProblem otherwise."""
    raw = text[1:] if text[:1] in ("v", "V") else text
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationProblem(f"`{text}` is not a release version (expected v1, v2, ...)")
    return int(raw)


DIR_MODE = 0o700


def publish(dataset_dir: Path, version: int, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` in a fresh folder beside `dataset_dir/vN`, then rename it into place.

    The rename is atomic, so readers see a whole release or none; on any error (or an
    interrupt) the temporary folder is removed and nothing is left behind. A process killed
    outright leaves its folder; the next publish removes it (writers hold a lock on their
    folder, so only dead ones' folders are touched). An existing version is never replaced:
    Conflict.
    """
    # Owner-only: a new exports folder, the dataset's folder and each release (0700).
    if not dataset_dir.parent.exists():
        _private_dir(dataset_dir.parent)
    _private_dir(dataset_dir)
    final = dataset_dir / f"v{version}"
    if final.exists():
        raise Conflict(f"Release {final} already exists; releases are never overwritten")
    tmp, lock = _new_partial(dataset_dir, version)
    try:
        _remove_stale_partials(dataset_dir)
        write(tmp)
        _fsync_tree(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            raise Conflict(
                f"Release {final} appeared while this one was being written; nothing was "
                "replaced (run the release again for the next version)"
            ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(lock)
    _fsync_dir(dataset_dir)
    return final


def unpublish(release: Path) -> None:
    """Take back a release that `publish` just put in place (its database row failed).

    Renamed out of the way first, so readers stop seeing it at once; then removed.
    """
    gone = release.parent / f".{release.name}.{secrets.token_hex(4)}.unpublished"
    try:
        os.rename(release, gone)
    except OSError:
        gone = release
    shutil.rmtree(gone, ignore_errors=True)
    _fsync_dir(release.parent)


def _private_dir(path: Path) -> None:
    """Create `path` (and missing parents) mode 0700 whatever the umask; tighten our own."""
    previous = os.umask(0o077)
    try:
        path.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(previous)
    info = path.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        path.chmod(DIR_MODE)


def _new_partial(dataset_dir: Path, version: int) -> tuple[Path, int]:
    """A fresh temporary folder for `version`, and an open descriptor holding its lock."""
    while True:
        tmp = dataset_dir / f".v{version}.{secrets.token_hex(4)}.partial"
        tmp.mkdir(mode=DIR_MODE)
        fd = os.open(tmp, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:
            return tmp, fd
        # Before we locked it, another publish took it for a dead writer's and removed it.
        os.close(fd)


def _remove_stale_partials(dataset_dir: Path) -> None:
    """Remove the temporary folders of publishes that were killed: nobody holds their lock."""
    for path in dataset_dir.glob(".v*.partial"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live publish is writing into it
        else:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _fsync_tree(root: Path) -> None:
    # Flush file contents before the rename, so a crash cannot leave a renamed, empty release.
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        _fsync_dir(folder)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the data is flushed already
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_manifest(release: Path) -> dict[str, Any]:
    """manifest.json of a release; NotFound when `release` is not a release folder."""
    path = release / MANIFEST
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{release} is not a gold release: {MANIFEST} is missing") from None
    except (OSError, ValueError) as exc:
        raise ValidationProblem(f"{path}: cannot read: {exc}") from None
    return data


def verify_file(release: Path, name: str, manifest: Mapping[str, Any]) -> None:
    """Check one file of a release against the sha256 its manifest records."""
    expected = (manifest.get("files") or {}).get(name, {}).get("sha256")
    if expected is None:
        raise ValidationProblem(f"{release / MANIFEST} lists no sha256 for {name}")
    if not (release / name).exists():
        raise NotFound(f"{release / name} is missing")
    if sha256_file(release / name) != expected:
        raise ValidationProblem(
            f"{release / name} does not match the sha256 in its manifest: the release was "
            "modified after it was written"
        )


def release_folders(exports_dir: Path) -> list[Path]:
    """Every published release under `exports_dir` (`NAME/vN` holding a manifest), newest first
    within a dataset, datasets by name."""
    found = [p.parent for p in exports_dir.glob(f"*/v*/{MANIFEST}") if p.parent.is_dir()]
    return sorted(
        found,
        key=lambda p: (p.parent.name, -parse_version(p.name) if p.name[1:].isdigit() else 0),
    )
