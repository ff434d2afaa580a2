"""Token health rules: expiry alerts, the fix each failure names, once a day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from revbridge.token_health import (
    RealmHealth,
    SalesforceHealth,
    alerts,
    authorize_command,
    days_left,
    due,
    markdown_report,
    record,
)

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _realm(days: float | None, problem: str | None = None, realm: str = "us") -> RealmHealth:
    expires = NOW + timedelta(days=days) if days is not None else None
    return RealmHealth(realm, "9341453172461001", f"qbo-{realm}", expires, problem)  # type: ignore[arg-type]


def test_days_left_rounds_up_and_goes_negative_once_past() -> None:
    assert days_left(NOW + timedelta(days=14), NOW) == 14
    assert days_left(NOW + timedelta(hours=3), NOW) == 1
    assert days_left(NOW - timedelta(days=2), NOW) == -2


def test_an_expiry_within_the_threshold_alerts_with_the_authorize_command() -> None:
    found = alerts([_realm(14), _realm(15, realm="eu")], None, NOW, 14, "config/prod.yaml")
    assert [a.key for a in found] == ["qbo:us:expiry"]
    text = found[0].text
    assert "expires in 14 days" in text and "2026-03-16" in text
    assert "`python -m deployments.authorize --realm us --config config/prod.yaml`" in text
    assert alerts([_realm(None)], None, NOW, 14) == []  # expiry unknown: nothing to say


def test_each_failure_names_its_fix() -> None:
    found = {
        a.key: a.text
        for a in alerts(
            [
                _realm(None, "reauthorize", "us"),
                _realm(None, "app_credentials", "eu"),
                _realm(None, "forbidden", "uk"),
            ],
            SalesforceHealth("sf", "login", "Salesforce refused the login (INVALID_LOGIN)."),
            NOW,
            14,
        )
    }
    assert "python -m deployments.authorize --realm us`" in found["qbo:us:reauthorize"]
    assert "client_id, client_secret" in found["qbo:eu:app_credentials"]
    assert "pick this company" in found["qbo:uk:forbidden"]
    assert "INVALID_LOGIN" in found["salesforce:login"] and "`sf`" in found["salesforce:login"]
    assert (
        authorize_command("us", "qbo-us")
        == "python -m deployments.authorize --realm us --block qbo-us"
    )


def test_an_alert_goes_out_once_a_day() -> None:
    found = alerts([_realm(3)], SalesforceHealth("sf", "unreachable", "timeout"), NOW, 14)
    today = NOW.date()
    sent = record({"qbo:eu:expiry": "2026-03-01"}, due(found, {}, today), today)
    assert sent == {"qbo:us:expiry": "2026-03-02", "salesforce:unreachable": "2026-03-02"}
    assert due(found, sent, today) == []
    assert due(found, sent, date(2026, 3, 3)) == found


def test_markdown_report_marks_expiring_and_failing() -> None:
    report = markdown_report(
        [_realm(3), _realm(90, realm="eu"), _realm(None, "reauthorize", "uk")],
        SalesforceHealth("sf"),
        NOW,
        14,
    )
    assert "**expiring**" in report and "**reauthorize**" in report
    assert "| Salesforce | sf | ok |" in report
