"""Settings, read from `ANNOTATE_*` environment variables (or a `.env` file), and the input
limits they set: free-text length, Parquet size, and how YAML/JSON from users is parsed."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from annotate.errors import ValidationProblem

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of the tool; CLI flags fall back to these."""

    model_config = SettingsConfigDict(env_prefix="ANNOTATE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///annotate.db",
        description="SQLAlchemy URL: sqlite:///path.db (default) or postgresql+psycopg://...",
    )
    schemas_dir: Path = Field(
        default=PROJECT_ROOT / "schemas",
        description="Folder holding the shipped label schema files (refusal-v2.yaml, ...).",
    )
    seed_dir: Path = Field(
        default=PROJECT_ROOT / "seed_prompts",
        description="Folder of the starter items: `annotate demo` loads its `v2/*.jsonl` (its "
        "own `*.jsonl` when it has no v2 folder).",
    )
    exports_dir: Path = Field(
        default=Path("exports"), description="Where gold releases are written."
    )
    lease_minutes: float = Field(
        default=30.0, gt=0, description="How long a claimed item stays reserved for its annotator."
    )
    secret_key: str = Field(
        default="",
        description="Key signing session cookies, at least 32 bytes (make one with "
        '`python -c "import secrets; print(secrets.token_urlsafe(48))"`). Empty: a key is '
        "generated once into `secret_key_file`.",
    )
    secret_key_file: str = Field(
        default="",
        description="File holding the generated signing key (owner-only, 0600). Empty: beside "
        "a SQLite database (`annotate.db` -> `annotate.db.key`), else `annotate-secret.key` in "
        "the working directory. Replicas must share it, or set `secret_key`.",
    )
    session_hours: float = Field(default=12.0, gt=0, description="Sign-in cookie lifetime.")
    secure_cookies: Literal["auto", "always"] = Field(
        default="auto",
        description="When the session cookie is marked Secure: `auto` when the request came over "
        "https (directly, or per a proxy's X-Forwarded-Proto header), `always` on every response.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=30_000, ge=0, description="How long SQLite waits for a lock before failing."
    )
    pool_size: int = Field(default=10, ge=1, description="PostgreSQL connection pool size.")
    login_free_failures: int = Field(
        default=3, ge=1, description="Failed sign-ins per user name before delays start."
    )
    login_free_failures_per_address: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins per client address (any user names) before delays start.",
    )
    login_delay_seconds: float = Field(
        default=1.0, gt=0, description="The first delay; each further failure doubles it."
    )
    login_max_delay_seconds: float = Field(
        default=900.0, gt=0, description="The longest delay between two sign-in attempts."
    )
    login_window_minutes: float = Field(
        default=15.0,
        gt=0,
        description="Failures are forgotten once the last one is this old (the count restarts).",
    )
    max_import_rows: int = Field(
        default=5_000_000, ge=1, description="Most rows an imported Parquet file may hold."
    )
    max_import_bytes: int = Field(
        default=1 << 30,
        ge=1,
        description="Largest size an imported Parquet file may take once decoded, in bytes "
        "(checked from its metadata first, then batch by batch as it is read).",
    )
    max_text_chars: int = Field(
        default=10_000,
        ge=1,
        description="Longest free text accepted (rationales, flag notes, adjudication notes, "
        "text labels), in characters.",
    )
    password_checks_at_once: int = Field(
        default=2,
        ge=1,
        description="Password hashes computed at the same time per process; more wait in line.",
    )
    password_check_wait_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a sign-in waits for its turn before being told to retry.",
    )
    argon2_memory_kib: int = Field(
        default=65_536,
        ge=8_192,
        description="Memory per password hash, KiB (argon2id m; 65536 = 64 MiB, pwdlib's "
        "default). Changing it applies to new hashes; existing ones keep verifying.",
    )
    argon2_time_cost: int = Field(default=3, ge=1, description="argon2id passes (t).")
    argon2_parallelism: int = Field(default=4, ge=1, description="argon2id lanes (p).")
    public_url: str = Field(
        default="",
        description="The URL browsers use to reach the app (e.g. https://label.example.org) "
        "when it is behind a proxy; websockets are accepted only from this origin. Empty: "
        "the origin the request came to (its Host header and scheme).",
    )
    max_upload_mb: int = Field(
        default=200,
        ge=1,
        description="Largest file (MB) an admin may upload in the app; also Streamlit's "
        "server.maxUploadSize.",
    )
    warm_campaigns: int = Field(
        default=2,
        ge=0,
        le=4,
        description="When `annotate serve` starts, the lead pages' figures of this many "
        "campaigns (those labeled most recently) are computed before any lead asks; 0: none.",
    )

    figure_process: bool = Field(
        default=True,
        description="Compute the lead figures that are computed in the background in a "
        "separate process (one, started on first need), so that pages being served keep "
        "the server's interpreter to themselves; off: in a thread of the server.",
    )

    @field_validator("public_url")
    @classmethod
    def _origin_only(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and origin_of(value) is None:
            raise ValueError(
                f"public_url `{value}` is not an http(s) URL such as https://label.example.org"
            )
        return value


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL or Origin header, default ports filled in;
    None when it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or (443 if scheme == "https" else 80)


def get_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides (None values ignored)."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]


class Limits(NamedTuple):
    """The input limits of Settings, read once per distinct environment (see `limits`)."""

    max_text_chars: int
    max_import_rows: int
    max_import_bytes: int


_LIMIT_VARS = ("ANNOTATE_MAX_TEXT_CHARS", "ANNOTATE_MAX_IMPORT_ROWS", "ANNOTATE_MAX_IMPORT_BYTES")


def limits() -> Limits:
    """The input limits now in force (ANNOTATE_MAX_*), cheap enough to call per saved label.

    Building Settings reads the environment and .env (milliseconds); this builds it again only
    when one of the limit variables changed.
    """
    return _limits(tuple(os.environ.get(v) for v in _LIMIT_VARS))


@functools.lru_cache(maxsize=16)
def _limits(_key: tuple[str | None, ...]) -> Limits:
    s = get_settings()
    return Limits(s.max_text_chars, s.max_import_rows, s.max_import_bytes)


def text_too_long(name: str, value: object, limit: int) -> str | None:
    """Why `value` is refused as free text `name` (longer than `limit` characters), or None."""
    if isinstance(value, str) and len(value) > limit:
        return (
            f"`{name}` is {len(value):,} characters long; the limit is {limit:,} "
            "(ANNOTATE_MAX_TEXT_CHARS): shorten it"
        )
    return None


def check_free_text(values: Mapping[str, object], *, subject: str) -> None:
    """ValidationProblem naming the first of `values` longer than ANNOTATE_MAX_TEXT_CHARS.

    Free text is checked where it enters the core (submit, edit, adjudicate, label imports)
    and again where annotations are stored, so no row or history row carries more.
    """
    limit = limits().max_text_chars
    for name, value in values.items():
        problem = text_too_long(name, value, limit)
        if problem is not None:
            raise ValidationProblem(f"{subject}: {problem}")


MAX_NESTING = 100
"""Deepest nesting of lists and objects accepted in files from users (JSON, YAML cells)."""


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases: `*name` is how a few hundred bytes expand to
    billions of nodes ("billion laughs"), and no file the tool reads needs one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                None,
                None,
                "aliases (`*name`) are not accepted: write the repeated value out",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)


def too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether `value` nests lists and dicts more than `limit` levels (found without recursing)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def load_user_data(text: str, *, yaml_syntax: bool) -> Any:
    """Parse a user's YAML or JSON text: safe types only, no aliases, at most MAX_NESTING deep.

    Raises ValueError with a message naming what is wrong (callers add the file name).
    """
    try:
        data = yaml.load(text, Loader=_NoAliasLoader) if yaml_syntax else json.loads(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    except RecursionError:
        data = None
    else:
        if not too_deep(data):
            return data
    raise ValueError(f"nested more than {MAX_NESTING} levels deep")
