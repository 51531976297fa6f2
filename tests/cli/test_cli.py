"""The `annotate` command through its real entry point: exit codes and exact messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from annotate.cli import app

runner = CliRunner()


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str, input: str | None = None) -> str:
    code, out, err = run(*args, input=input)
    assert code == 0, (out, err)
    return out


def all_commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        subcommands = getattr(cmd, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            found.append(path)

    walk(get_command(app), [])
    return found


def test_every_command_has_help() -> None:
    commands = all_commands()
    assert ["init"] in commands and ["campaign", "create"] in commands
    for path in commands:
        code, out, _ = run(*path, "--help")
        assert code == 0 and "Usage:" in out, path
        click_cmd = get_command(app)
        for part in path:
            click_cmd = click_cmd.commands[part]  # type: ignore[attr-defined]
        assert click_cmd.help, f"`annotate {' '.join(path)}` has no help text"
        for param in click_cmd.params:
            if param.name != "help" and isinstance(param, typer.core.TyperOption):
                assert param.help, f"--{param.name} of `annotate {' '.join(path)}` has no help"


def test_console_script_is_installed() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "annotate.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and "import-labels" in proc.stdout


def test_commands_need_init(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    code, _, err = run("status", "-c", "x", "--db", url)
    assert code == 1
    assert err.strip() == f"error: Database {url} is not set up: run `annotate init` first"


def test_full_flow(db_url: str, tmp_path: Path) -> None:
    ok("init", "--db", db_url)
    out = ok("campaign", "create", "demo-c", "--overlap", "2", "--db", db_url)
    assert out.strip() == "campaign demo-c created (schema refusal-v2, overlap 2)"
    out = ok("campaign", "create", "old-c", "--schema", "refusal-v1", "--db", db_url)
    assert out.strip() == "campaign old-c created (schema refusal-v1, overlap 2)"
    items = tmp_path / "items.csv"
    items.write_text("id,prompt,completion\n1,How do I kill a process?,Use kill.\n2,Hi,Hello\n")
    args = ["import", str(items), "--campaign", "demo-c", "--column", "response=completion"]
    assert ok(*args, "--db", db_url).strip() == "imported 2 items into demo-c (0 already there)"
    assert ok(*args, "--db", db_url).strip() == "imported 0 items into demo-c (2 already there)"
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "item_id,annotator,field,value\n1,ann1,observed_action,answer\n"
        "1,ann2,observed_action,answer\n2,ann1,observed_action,refuse\n"
    )
    out = ok("import-labels", str(labels), "--campaign", "demo-c", "--db", db_url)
    assert "3 annotations added" in out
    status = json.loads(ok("status", "--campaign", "demo-c", "--json", "--db", db_url))
    assert {k: status[k] for k in ("items", "annotations", "annotators", "complete_items")} == {
        "items": 2,
        "annotations": 3,
        "annotators": 2,
        "complete_items": 1,
    }
    listed = json.loads(ok("campaign", "list", "--json", "--db", db_url))
    assert {c["name"]: c["items"] for c in listed} == {"demo-c": 2, "old-c": 0}


def test_users_add_reads_password_from_stdin(db_url: str) -> None:
    ok("init", "--db", db_url)
    out = ok(
        "users",
        "add",
        "alice",
        "--role",
        "lead",
        "--password-stdin",
        "--db",
        db_url,
        input="s3cret-pass\n",
    )
    assert out.strip() == "user alice added (lead)"
    users = json.loads(ok("users", "list", "--json", "--db", db_url))
    assert users == [{"name": "alice", "role": "lead", "machine": False, "can_sign_in": True}]
    code, _, err = run(
        "users",
        "add",
        "bob",
        "--role",
        "chief",
        "--password-stdin",
        "--db",
        db_url,
        input="s3cret-pass\n",
    )
    assert code == 1 and err.strip() == ("error: Role `chief` is not one of annotator, lead, admin")


def test_users_add_has_no_password_argument() -> None:
    code, _, err = run("users", "add", "bob", "--password", "x")
    assert code == 2 and "No such option" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,question,completion\n1,Q,A\n", "missing column `prompt` or `conversation`"),
        ("id,prompt,completion\n1,,A\n", "items.csv:2: field `prompt`: is empty"),
        (b"id,prompt,completion\n1,\xff,A\n", "items.csv:2: bad encoding"),
        (
            "id,prompt,completion\n1,Q,A\n1,Q,B\n",
            "items.csv:3: field `id`: `1` already appears on line 2 with different content",
        ),
    ],
)
def test_bad_imports_exit_nonzero_and_change_nothing(
    db_url: str, tmp_path: Path, content: str | bytes, message: str
) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "c", "--db", db_url)
    path = tmp_path / "items.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    code, out, err = run(
        "import", str(path), "-c", "c", "--column", "response=completion", "--db", db_url
    )
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    status = json.loads(ok("status", "-c", "c", "--json", "--db", db_url))
    assert status["items"] == 0


def test_bad_labels_exit_nonzero_and_change_nothing(db_url: str, tmp_path: Path) -> None:
    ok("init", "--db", db_url)
    ok("campaign", "create", "c", "--db", db_url)
    items = tmp_path / "i.csv"
    items.write_text("id,prompt,response\n1,Q,A\n")
    ok("import", str(items), "-c", "c", "--db", db_url)
    labels = tmp_path / "l.csv"
    labels.write_text(
        "item_id,annotator,field,value\n1,a,observed_action,answer\n1,b,observed_action,comply\n"
    )
    code, _, err = run("import-labels", str(labels), "-c", "c", "--db", db_url)
    assert code == 1
    assert err.strip() == (
        f"error: {labels}:3: field `value`: `comply` is not an allowed observed_action value "
        "(answer, answer_with_caveat, answer_safe_part, clarify, correct_premise, abstain, refuse, "
        "pivot); map it with --values"
    )
    assert json.loads(ok("status", "-c", "c", "--json", "--db", db_url))["annotations"] == 0
    users = json.loads(ok("users", "list", "--json", "--db", db_url))
    assert users == []


def test_unknown_campaign_and_bad_schema(db_url: str, tmp_path: Path) -> None:
    ok("init", "--db", db_url)
    code, _, err = run("status", "-c", "ghost", "--db", db_url)
    assert (code, err.strip()) == (1, "error: No campaign `ghost`")
    broken = tmp_path / "team.yaml"
    broken.write_text("name: team\nversion: 1\nfields: []\ncolour: red\n")
    code, _, err = run("campaign", "create", "t", "--schema", str(broken), "--db", db_url)
    assert code == 1 and f"{broken}: colour: Extra inputs are not permitted" in err


def test_bad_database_url() -> None:
    code, _, err = run("init", "--db", "mysql://remote.invalid/x")
    assert code == 1 and "Database `mysql` is not supported" in err


def test_demo_no_serve_loads_seed_prompts(db_url: str) -> None:
    out = ok("demo", "--no-serve", "--db", db_url)
    assert "alice" in out and "lena" in out and "adam" in out
    status = json.loads(ok("status", "-c", "demo", "--json", "--db", db_url))
    assert status["items"] >= 150
    again = ok("demo", "--no-serve", "--db", db_url)
    assert "alice" in again
    assert (
        json.loads(ok("status", "-c", "demo", "--json", "--db", db_url))["items"]
        == (status["items"])
    )


def test_help_shows_flags_without_a_value_placeholder() -> None:
    """`--json` takes no value, so the help shows no `<bool>` after it (nor after --help)."""
    for path in all_commands():
        _, out, _ = run(*path, "--help")
        assert "<bool>" not in out, (path, out)
    _, out, _ = run("status", "--help")
    assert "--json " in out and "--campaign" in out and "<str>" in out
    code, out, _ = run("release", "--help")
    assert code == 0 and "--allow-rule-violations" in out and "<list[str]>" in out
