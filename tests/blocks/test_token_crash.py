"""Atomic token saves: a crash between Intuit's refresh answer and the block save does not strand
the realm (the write-ahead journal), and a dead refresh token names the authorize command."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from quickbooks.objects.company_info import CompanyInfo

from blocks import QuickBooksConnection, QuickBooksReauthorizationRequired
from blocks.sandbox import quickbooks_from_info
from blocks.token_journal import STATE_DIR_ENV, JournalEntry, TokenJournal, token_digest

pytestmark = pytest.mark.usefixtures("prefect_api")


class Crash(BaseException):
    """The process dies here (nothing below it runs; no ``except Exception`` catches it)."""


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def saved(
    qbo_info: dict[str, Any], control: httpx.Client, block_name: str, state_dir: Path
) -> QuickBooksConnection:
    """The "us" realm's block, saved with the seed's refresh token."""
    block = quickbooks_from_info(qbo_info)["us"]
    block.save(block_name)
    return block


def _tokens(control: httpx.Client, realm_id: str, action: str) -> dict[str, Any]:
    response = control.post("/_sandbox/tokens", json={"realm_id": realm_id, "action": action})
    response.raise_for_status()
    return response.json()["realms"][realm_id]


def _authorize_calls(control: httpx.Client) -> int:
    calls = control.get("/_sandbox/calls").json()["calls"]
    return sum(c["count"] for c in calls if c["endpoint"] == "authorize")


def test_crash_between_refresh_and_save_does_not_strand_the_realm(
    saved: QuickBooksConnection,
    control: httpx.Client,
    block_name: str,
    state_dir: Path,
    qbo_info: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    initial = saved.refresh_token.get_secret_value()
    _tokens(control, saved.realm_id, "rotate")  # the next refresh returns a new token

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash

    worker = QuickBooksConnection.load(block_name)
    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(QuickBooksConnection, "save", crash)
        worker.refresh()

    state = _tokens(control, saved.realm_id, "expire_access")
    rotated = state["current_refresh_token"]
    assert rotated != initial
    assert QuickBooksConnection.load(block_name).refresh_token.get_secret_value() == initial
    # Intuit's rule: the replaced token is refused at once; without the journal this is fatal.
    with pytest.raises(QuickBooksReauthorizationRequired):
        quickbooks_from_info(qbo_info)["us"].refresh()

    journal = state_dir / "qbo-token-journal" / f"{block_name}.json"
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600
    assert rotated not in journal.read_text() and initial not in journal.read_text()

    # The next process loads the (stale) block and still gets a client, without re-consent.
    restarted = QuickBooksConnection.load(block_name)
    qb = restarted.get_client()
    assert CompanyInfo.get(restarted.realm_id, qb=qb).CompanyName
    stored = QuickBooksConnection.load(block_name)
    assert stored.refresh_token.get_secret_value() == rotated
    assert stored.refresh_token_expires_at is not None
    assert not journal.exists()
    assert _authorize_calls(control) == 0


def test_a_failed_save_keeps_the_client_and_the_next_refresh_saves(
    saved: QuickBooksConnection,
    control: httpx.Client,
    block_name: str,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _tokens(control, saved.realm_id, "rotate")

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Prefect API unavailable")

    worker = QuickBooksConnection.load(block_name)
    with monkeypatch.context() as patch:
        patch.setattr(QuickBooksConnection, "save", unavailable)
        qb = worker.refresh()  # the token is safe in the journal: the run goes on
    assert CompanyInfo.get(worker.realm_id, qb=qb).CompanyName

    rotated = worker.refresh_token.get_secret_value()
    assert QuickBooksConnection.load(block_name).refresh_token.get_secret_value() != rotated
    worker.refresh()  # re-reads the stale block, takes the journal's token, saves it
    assert QuickBooksConnection.load(block_name).refresh_token.get_secret_value() == rotated
    assert not (state_dir / "qbo-token-journal" / f"{block_name}.json").exists()


def test_a_journal_entry_the_block_has_moved_past_is_ignored(
    saved: QuickBooksConnection, control: httpx.Client, block_name: str
) -> None:
    journal = TokenJournal(block_name, saved.client_secret.get_secret_value())
    # e.g. the realm was re-authorized after a crash: the entry's predecessor is not the block's
    journal.write(JournalEntry(saved.realm_id, token_digest("an older token"), "AB11-gone", None))
    worker = QuickBooksConnection.load(block_name)
    worker.refresh()
    assert worker.refresh_token.get_secret_value() == saved.refresh_token.get_secret_value()
    assert journal.read() is None


def test_an_expired_refresh_token_names_the_authorize_command(
    saved: QuickBooksConnection, control: httpx.Client, block_name: str
) -> None:
    _tokens(control, saved.realm_id, "expire_refresh")
    worker = QuickBooksConnection.load(block_name)
    with pytest.raises(QuickBooksReauthorizationRequired) as exc:
        worker.get_client()
    message = str(exc.value)
    assert f"python -m deployments.authorize --realm {saved.realm_id} --block {block_name}" in (
        message
    )
    assert "invalid_grant" in message and "Connect" in message
    assert saved.refresh_token.get_secret_value() not in message
