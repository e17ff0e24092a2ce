"""Storage URLs as the command line takes them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from optuna.storages import BaseStorage


__all__ = ["open_storage", "redact_text", "redact_url"]

_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_storage(url: str, *, must_exist: bool = False) -> str | BaseStorage:
    """What Optuna should open for ``url``.

    - ``dialect://...`` (``sqlite:///x.db``, ``postgresql://...``, ``mysql://...``): an RDB URL,
      returned as is for Optuna to open.
    - ``journal:PATH``, or a path to an existing file that is not an SQLite database: Optuna's
      ``JournalStorage`` on a ``JournalFileBackend`` at that path.
    - A path to an existing SQLite database file: ``sqlite:///PATH``.

    With ``must_exist`` (commands that only read a study), an SQLite or journal file that does
    not exist is an error rather than a new empty storage left behind.

    Raises:
        ValueError: ``url`` is empty, or a plain path to a file that does not exist, or (with
            ``must_exist``) names an SQLite database or journal file that does not exist.
    """
    if not url:
        raise ValueError("storage URL is empty; expected e.g. sqlite:///study.db")
    if "://" in url:
        if must_exist:
            _check_sqlite_file(url)
        return url
    if url.startswith("journal:"):
        journal = url[len("journal:") :]
        if must_exist and not Path(journal).is_file():
            raise ValueError(f"no journal file at {journal!r}")
        return _journal(journal)
    path = Path(url)
    if not path.is_file():
        raise ValueError(
            f"storage {url!r} is neither a database URL (sqlite:///..., postgresql://...) nor "
            "an existing file; use journal:PATH for a new journal file"
        )
    with open(path, "rb") as handle:
        if handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
            return f"sqlite:///{path}"
    return _journal(str(path))


def _check_sqlite_file(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # not a URL SQLAlchemy reads: Optuna will say so
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # sqlite:///file:path?mode=ro&uri=true
        return
    if not Path(database).is_file():
        raise ValueError(f"no SQLite database at {database!r} (from {redact_url(url)})")


def _journal(path: str) -> BaseStorage:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not path:
        raise ValueError("journal: needs a file path, e.g. journal:./study.log")
    return JournalStorage(JournalFileBackend(path))


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs and messages.

    >>> redact_url("postgresql://ana:s3cret@db.example.org:5432/hpo")
    'postgresql://ana:***@db.example.org:5432/hpo'
    >>> redact_url("sqlite:///study.sqlite3")
    'sqlite:///study.sqlite3'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://\S+")


def redact_text(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``.

    >>> redact_text("cannot connect to postgresql://ana:pw@host/db: refused")
    'cannot connect to postgresql://ana:***@host/db: refused'
    """
    return _URL.sub(lambda match: redact_url(match.group(0)), text)
