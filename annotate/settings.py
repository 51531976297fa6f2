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
        description="Key signing session cookies; generated and kept in the database if empty.",
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
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins per user allowed within the lockout window."
    )
    login_window_minutes: float = Field(
        default=15.0, gt=0, description="Window over which failed sign-ins are counted."
    )
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
