"""Files only their owner may read: the SQLite database and the signing key file.

Everything here creates with mode 0600 whatever the umask, and tightens a database file that
an older version left readable by others. (Release folders are made 0700 by release.folders.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

FILE_MODE = 0o600
SQLITE_SIDECARS = ("", "-wal", "-shm", "-journal")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory databases)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """chmod `path` to `mode` if it exists, is ours and is open to group or others."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(mode)


def prepare_sqlite_file(path: Path) -> None:
    """Create an empty SQLite file with mode 0600 if missing, else tighten it and its sidecars.

    SQLite gives the -wal, -shm and -journal files it makes the mode of the database file, so
    they are owner-only too. A missing parent folder is left for SQLite to report.
    """
    if path.parent.is_dir():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        except FileExistsError:
            pass
    for suffix in SQLITE_SIDECARS:
        tighten(path.with_name(path.name + suffix))


def write_new_private(path: Path, text: str) -> bool:
    """Write `text` to `path` (mode 0600) unless it exists; whether this call created it.

    Written to a temporary file, then linked into place, so a reader never sees half a file
    and two processes racing keep one content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
