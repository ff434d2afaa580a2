"""The incremental-sync watermark: (SystemModstamp, Id) of the last row known to be done.

The query reads rows strictly after the watermark (`revbridge.soql`), so the watermark may only
move to a row that was processed, never past a failed one (it is retried next run), never past
the run's start (rows stamped later belong to the next run), and never backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from revbridge.models import Opportunity, parse_datetime


class Watermark(BaseModel):
    """A position in ``ORDER BY SystemModstamp, Id`` order; instances compare in that order."""

    model_config = ConfigDict(frozen=True)

    ts: datetime
    id: str = ""

    @field_validator("ts", mode="before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        parsed = parse_datetime(value) if isinstance(value, str | datetime) else value
        return parsed

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.ts, self.id)

    def __lt__(self, other: Watermark) -> bool:
        return self.key < other.key

    def __le__(self, other: Watermark) -> bool:
        return self.key <= other.key

    def __gt__(self, other: Watermark) -> bool:
        return self.key > other.key

    def __ge__(self, other: Watermark) -> bool:
        return self.key >= other.key

    def to_dict(self) -> dict[str, str]:
        """JSON-able form for a Prefect Variable."""
        return {"ts": self.ts.astimezone(UTC).isoformat(timespec="milliseconds"), "id": self.id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Watermark:
        return cls.model_validate({"ts": data["ts"], "id": data.get("id") or ""})

    @classmethod
    def of(cls, opp: Opportunity) -> Watermark:
        """The position of a fetched Opportunity (its SystemModstamp and Id)."""
        if opp.system_modstamp is None:
            raise ValueError(f"{opp.id} has no SystemModstamp: select it in the query")
        return cls(ts=opp.system_modstamp, id=opp.id)


def advance(
    current: Watermark | None,
    processed_rows: Iterable[tuple[Watermark, bool]],
    run_started: datetime,
) -> Watermark | None:
    """The new watermark after a run.

    ``processed_rows``: each fetched row's position and whether it is done (invoiced, skipped,
    parked for review: anything that need not be read again), in query order. The watermark moves
    to the last done row before the first row that is not done or is stamped at/after
    ``run_started``, and never moves backwards.
    """
    limit = parse_datetime(run_started)
    assert limit is not None
    best = current
    for row, done in processed_rows:
        if not done or row.ts >= limit:
            break
        if best is None or row > best:
            best = row
    return best
