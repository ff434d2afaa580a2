"""Flow tests: the real flows against the whole sandbox, on a throwaway Prefect API."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.variables import Variable

from blocks.quickbooks import token_lock_name
from blocks.sandbox import SandboxBlocks, blocks_from_info, save_all
from flows.aging import DIGEST_VARIABLE
from flows.closed_won import STATE_VARIABLE
from sandbox.core.server import Sandbox
from tasks.approvals import APPROVAL_TAG
from tasks.locks import invoicing_lock_name


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(profile="demo", state_dir=tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="session")
def approval_deployment(prefect_api: None) -> str:
    """The approval deployment registered (not served): approval runs wait as Scheduled until
    a test serves it with `approval_runner`."""
    from flows.approval import invoice_approval

    deployment = invoice_approval.to_deployment(name="invoice-approval")
    deployment.apply()
    return "invoice-approval/invoice-approval"


@pytest.fixture
def fresh(sandbox: Sandbox, approval_deployment: str) -> Iterator[Sandbox]:
    """Every emulator back to the demo seed (tokens too), the watermark and the approval runs
    of earlier tests forgotten, the blocks saved again with the seed's tokens."""
    for service in sandbox.services.values():
        service.seed("demo")
    Variable.unset(STATE_VARIABLE)
    Variable.unset(DIGEST_VARIABLE)
    blocks = blocks_from_info(sandbox.info())
    with get_client(sync_client=True) as client:
        # a token or invoicing lock slot held by a process an earlier test stopped is not this
        # test's (the test server runs no lease repossessor: a dead holder's slot stays taken)
        for connection in blocks.quickbooks.values():
            for name in (
                token_lock_name(connection.realm_id),
                invoicing_lock_name(connection.realm_id),
            ):
                with contextlib.suppress(ObjectNotFound):
                    client.delete_global_concurrency_limit_by_name(name)
    save_all(blocks)
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[APPROVAL_TAG])),
            sort=FlowRunSort.ID_DESC,
            limit=200,
        ):
            client.delete_flow_run(run.id)
    yield sandbox


@pytest.fixture
def blocks(fresh: Sandbox) -> SandboxBlocks:
    """Unsaved blocks for the test's own checks, with no client cached from an earlier seed."""
    return blocks_from_info(fresh.info())


def demo_config(path: Path, edit: Callable[[dict[str, Any]], None]) -> str:
    """config/demo.yaml changed by ``edit``, written to ``path``: its path, for ``config_path``."""
    config = yaml.safe_load(Path("config/demo.yaml").read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return str(path)


def without_delivery(tmp_path: Path) -> str:
    """The demo config with invoice delivery off (no contract upload or e-mail per invoice):
    what the call-budget checks measure, as QuickBooks has no batch form of either call."""
    return demo_config(tmp_path / "no-delivery.yaml", lambda c: c.pop("delivery", None))


def calls(sandbox: Sandbox, service: str) -> dict[str, Any]:
    return httpx.get(f"{sandbox.servers[service].base_url}/_sandbox/calls", verify=False).json()


def slack_messages(sandbox: Sandbox, channel: str | None = None) -> list[dict[str, Any]]:
    params = {"channel": channel} if channel else {}
    url = f"{sandbox.servers['slack'].base_url}/_sandbox/messages"
    return httpx.get(url, params=params).json()["messages"]


def inject(sandbox: Sandbox, service: str, **fault: Any) -> None:
    url = f"{sandbox.servers[service].base_url}/_sandbox/faults"
    httpx.post(url, json=fault, verify=False).raise_for_status()


@pytest.fixture
def approval_runner(fresh: Sandbox) -> Iterator[None]:
    """The approval deployment served in this process, polling every second, as
    `deployments.serve` does in production."""
    from prefect.runner import Runner

    from flows.approval import invoice_approval

    runner = Runner(query_seconds=1, pause_on_shutdown=False, limit=4)
    runner.add_deployment(invoice_approval.to_deployment(name="invoice-approval"))
    thread = threading.Thread(target=lambda: asyncio.run(runner.start()), daemon=True)
    thread.start()
    yield
    runner.stop()
    thread.join(timeout=20)
