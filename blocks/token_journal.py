"""A write-ahead journal for rotated QuickBooks refresh tokens.

Intuit invalidates the previous refresh token as soon as a refresh returns a new one, so a process
that dies between "Intuit answered the refresh" and "the block is saved" would strand the realm
(the saved token is dead, the live one was only in memory). ``QuickBooksConnection`` therefore
writes the new token here first, then saves the block, then clears the entry; the next refresh of
that block finds an entry whose predecessor is the token the block still holds, and takes it.

One file per saved block, ``<state dir>/qbo-token-journal/<block name>.json``; the state dir is
``$REVBRIDGE_STATE_DIR``, else ``$PREFECT_HOME/revbridge``. Each write is atomic (a 0600 temp
file in the same directory, fsync, rename, fsync of the directory). The token is encrypted with a
key derived from the app's client secret (Fernet), so the file alone does not hand it out; the
previous token is kept only as a SHA-256 digest. Workers whose disk does not survive a crash
(containers) need the state dir on a persistent volume for this to help.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

STATE_DIR_ENV = "REVBRIDGE_STATE_DIR"
JOURNAL_DIR = "qbo-token-journal"

logger = logging.getLogger(__name__)


def journal_dir() -> Path:
    """Where the entries live (created on first write, mode 0700)."""
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        base = Path(configured).expanduser()
    else:
        from prefect.settings import PREFECT_HOME

        base = Path(PREFECT_HOME.value()) / "revbridge"
    return base / JOURNAL_DIR


def token_digest(token: str) -> str:
    """What the journal keeps of the token an entry replaces."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class JournalEntry:
    """A refresh token Intuit issued that the block may not hold yet."""

    realm_id: str
    replaces: str  # token_digest() of the token that was refreshed
    refresh_token: str
    expires_at: datetime | None


class TokenJournal:
    """The journal entry of one saved block."""

    def __init__(self, block_name: str, client_secret: str, directory: Path | None = None) -> None:
        self.path = (directory or journal_dir()) / f"{block_name}.json"
        key = hashlib.sha256(b"revbridge-qbo-token-journal:" + client_secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def write(self, entry: JournalEntry) -> None:
        """Replace the entry atomically and durably."""
        body = {
            "realm_id": entry.realm_id,
            "replaces": entry.replaces,
            "refresh_token": self._fernet.encrypt(entry.refresh_token.encode()).decode(),
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
        }
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = directory / f".{self.path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(directory)

    def read(self) -> JournalEntry | None:
        """The pending entry, or None (none, unreadable, or written with another secret)."""
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
            token = self._fernet.decrypt(body["refresh_token"].encode()).decode()
            expires = body.get("expires_at")
            return JournalEntry(
                realm_id=str(body["realm_id"]),
                replaces=str(body["replaces"]),
                refresh_token=token,
                expires_at=datetime.fromisoformat(expires) if expires else None,
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError, InvalidToken):
            logger.warning("ignoring the unreadable token journal entry %s", self.path)
            return None

    def clear(self) -> None:
        """Forget the entry (the block holds its token now)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories cannot be
    opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
