"""Settings, read from `ANNOTATE_*` environment variables (or a `.env` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        description="Folder of the starter items that `annotate demo` loads.",
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
