"""``python -m deployments.serve --poll-seconds``: how often the runner looks for runs to start
(an event-triggered run waits for that look)."""

from __future__ import annotations

from typing import Any

import pytest

from deployments import serve


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `deployments.serve.main` hands to Prefect's `serve`, without serving."""
    seen: dict[str, Any] = {}

    def fake_serve(*deployments: Any, **kwargs: Any) -> None:
        seen["deployments"] = deployments
        seen.update(kwargs)

    monkeypatch.setattr(serve, "serve", fake_serve)
    return seen


def test_the_runner_polls_every_second_by_default(served: dict[str, Any]) -> None:
    serve.main([])
    assert served["query_seconds"] == serve.RUNNER_POLL_SECONDS == 1.0
    names = {d.name for d in served["deployments"]}
    assert "on-push" in names


def test_poll_seconds_sets_the_runner_query_interval(served: dict[str, Any]) -> None:
    serve.main(["--poll-seconds", "0.5", "--limit", "3"])
    assert served["query_seconds"] == 0.5
    assert served["limit"] == 3


def test_a_poll_interval_that_is_not_positive_is_refused(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        serve.main(["--poll-seconds", "0"])
    assert exit_.value.code == 2
    assert "--poll-seconds must be positive" in capsys.readouterr().err
    assert served == {}
