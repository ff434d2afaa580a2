"""``python -m deployments.doctor`` against the demo sandbox, in-process, then broken on purpose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from blocks.sandbox import SandboxBlocks
from deployments.doctor import main
from sandbox.core.server import Sandbox
from tasks.quickbooks import qbo_call, qbo_query
from tests.flows.conftest import inject

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


def doctor(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, list[dict[str, str]]]:
    code = main(["--config", str(config), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["exit_code"] == code
    return code, report["rows"]


def blockers(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["status"] == "blocker"]


def test_the_demo_is_ready_with_only_warnings(
    fresh: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(DEMO_CONFIG)])
    table = capsys.readouterr().out
    assert code == 0, table
    assert "0 blocker: ready" in table
    code, rows = doctor(capsys, DEMO_CONFIG)
    assert code == 0 and not blockers(rows)
    by = {(r["check"], r["target"]): r for r in rows}
    assert by[("auth", "salesforce")]["status"] == "ok"
    assert by[("auth", "quickbooks us")]["status"] == "ok"
    assert by[("auth", "quickbooks eu")]["status"] == "ok"
    assert by[("auth", "slack")]["status"] == "ok"
    assert by[("fields", "salesforce Opportunity")]["status"] == "ok"
    assert by[("routing", "record type US_Sales")]["detail"] == "→ realm us"
    assert by[("routing", "record type EU_Sales")]["detail"] == "→ realm eu"
    assert by[("items", "quickbooks us")]["status"] == "ok"
    assert by[("tax code", "quickbooks us")]["status"] == "ok"
    # the bot is not in #sales-wins, where no flow posts yet: a warning, not a blocker
    wins = by[("slack", "slack.wins_channel")]
    assert wins["status"] == "warn" and "not a member" in wins["detail"]
    assert by[("slack", "slack.alerts_channel")]["status"] == "ok"


def broken_config(tmp_path: Path) -> Path:
    """The demo config with a mapped item that does not exist and a misspelt record type."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["realms"]["us"]["item_map"]["SEAT-ADD"] = "Extra Seat"
    data["realms"]["eu"]["record_types"] = ["EU_Sale"]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def deactivate_item(blocks: SandboxBlocks, realm: str, name: str) -> None:
    connection = blocks.quickbooks[realm]
    (item,) = qbo_query(connection, f"SELECT * FROM Item WHERE Name = '{name}'")
    body = {"Id": item["Id"], "SyncToken": item["SyncToken"], "sparse": True, "Active": False}
    qbo_call(connection, "POST", "item", body=body)


def test_each_blocker_is_named_and_fails_the_run(
    fresh: Sandbox,
    blocks: SandboxBlocks,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deactivate_item(blocks, "eu", "Implementation")
    code, rows = doctor(capsys, broken_config(tmp_path))
    assert code == 1
    found = {(r["check"], r["target"], r["detail"]) for r in blockers(rows)}
    assert found == {
        ("items", "quickbooks us", "item_map.SEAT-ADD: 'Extra Seat' does not exist"),
        ("items", "quickbooks eu", "item_map.IMPL-STD: 'Implementation' is inactive"),
        (
            "routing",
            "record type EU_Sales",
            "routes to no realm (not in any realms.*.record_types, no routing.default)",
        ),
    }
    misspelt = [r for r in rows if r["target"] == "realm eu"]
    assert [r["status"] for r in misspelt] == ["warn"]
    assert "'EU_Sale' is an unknown Opportunity record type" in misspelt[0]["detail"]
    # the rest still runs and passes
    assert {r["status"] for r in rows if r["check"] == "auth"} == {"ok"}


def test_a_salesforce_401_is_a_blocker_with_its_reason_and_no_secret(
    fresh: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    inject(fresh, "salesforce", path="/query", status=401, count=10)
    code = main(["--config", str(DEMO_CONFIG)])
    table = capsys.readouterr().out
    assert code == 1
    line = next(x for x in table.splitlines() if x.startswith("BLOCKER"))
    assert re.search(r"auth +salesforce +Salesforce 401 .*INVALID_SESSION_ID", line), line
    info = fresh.info()
    for secret in (
        info["salesforce"]["password"],
        info["salesforce"]["client_secret"],
        info["quickbooks"]["client_secret"],
        info["slack"]["token"],
    ):
        assert secret not in table
    # what needs Salesforce is reported as not checked; QuickBooks and Slack still are
    assert "not checked: Salesforce auth failed" in table
    for target in ("quickbooks us", "quickbooks eu", "slack"):
        assert re.search(rf"^OK +auth +{target} ", table, re.M), target
