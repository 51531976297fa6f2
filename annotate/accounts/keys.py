"""The key that signs session cookies: from ANNOTATE_SECRET_KEY, else a key file.

Without `Settings.secret_key`, a key is generated once into `Settings.secret_key_file`
(default: beside a SQLite database, `annotate.db` -> `annotate.db.key`; for PostgreSQL
`annotate-secret.key` in the working directory), created with mode 0600. It is never kept in
the database, so a copy of the database cannot mint cookies. A key that an older version stored
in the database (`app_secret` row `session_signing_key`) is moved into the key file on first
use and deleted from the database, so cookies signed with it keep working.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy.engine import Engine

from annotate.errors import ConfigError
from annotate.settings import Settings
from annotate.storage import db
from annotate.storage.files import sqlite_path, tighten, write_new_private
from annotate.storage.models import AppSecret

SIGNING_KEY_NAME = "session_signing_key"
MIN_KEY_BYTES = 32
MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
DEFAULT_KEY_FILE = "annotate-secret.key"


def check_key(key: str, where: str) -> str:
    """`key` if it has at least MIN_KEY_BYTES bytes; ConfigError saying how to make one."""
    size = len(key.encode())
    if size < MIN_KEY_BYTES:
        raise ConfigError(
            f"{where} is {size} bytes long; a signing key needs at least {MIN_KEY_BYTES}. "
            f"Make one with: {MAKE_ONE}"
        )
    return key


def key_file(settings: Settings) -> Path:
    """Where the generated key lives for these settings."""
    if settings.secret_key_file:
        return Path(settings.secret_key_file)
    database = sqlite_path(settings.database_url)
    if database is not None:
        return database.with_name(database.name + ".key")
    return Path(DEFAULT_KEY_FILE)


def signing_key(*, engine: Engine, settings: Settings) -> str:
    """`settings.secret_key` (checked), else the key file's key, made or migrated on first use.

    Every replica and restart sharing the key file signs with the same key; two processes
    creating it at once both end up with the one written first.
    """
    if settings.secret_key:
        return check_key(settings.secret_key, "ANNOTATE_SECRET_KEY")
    path = key_file(settings)
    if not path.exists():
        with db.session_scope(engine) as s:
            stored = s.get(AppSecret, SIGNING_KEY_NAME)
            value = stored.value if stored is not None else secrets.token_urlsafe(48)
        write_new_private(path, value + "\n")
    tighten(path)
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"Cannot read the signing key file {path}: {exc.strerror}") from None
    check_key(key, f"The key in {path}")
    with db.session_scope(engine) as s:
        stored = s.get(AppSecret, SIGNING_KEY_NAME)
        if stored is not None:
            s.delete(stored)
    return key
