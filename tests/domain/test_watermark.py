from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from revbridge.models import Opportunity
from revbridge.watermark import Watermark, advance

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RUN = T0 + timedelta(hours=4)


def _mark(seconds: int, record_id: str = "006A") -> Watermark:
    return Watermark(ts=T0 + timedelta(seconds=seconds), id=record_id)


def test_ordering_uses_id_as_tiebreak() -> None:
    assert _mark(1, "006A") < _mark(1, "006B") < _mark(2, "0060")
    assert _mark(1, "006B") >= _mark(1, "006B") > _mark(1, "006A")
    assert sorted([_mark(2), _mark(1, "006B"), _mark(1, "006A")]) == [
        _mark(1, "006A"),
        _mark(1, "006B"),
        _mark(2),
    ]


def test_round_trips_through_json() -> None:
    mark = Watermark.model_validate(
        {"ts": "2026-11-23T10:00:00.250+0000", "id": "0065g000000000AAAQ"}
    )
    data = json.loads(json.dumps(mark.to_dict()))
    assert data == {"ts": "2026-11-23T10:00:00.250+00:00", "id": "0065g000000000AAAQ"}
    assert Watermark.from_dict(data) == mark
    assert Watermark.from_dict({"ts": "2026-11-23T10:00:00Z"}).id == ""


def test_position_of_an_opportunity(won: dict[str, Opportunity]) -> None:
    opp = won["opp-001"]
    assert Watermark.of(opp) == Watermark(ts=T0, id=opp.id)
    with pytest.raises(ValueError, match="no SystemModstamp"):
        Watermark.of(opp.model_copy(update={"system_modstamp": None}))


def test_advances_to_the_last_done_row() -> None:
    rows = [(_mark(1), True), (_mark(2), True), (_mark(3), True)]
    assert advance(None, rows, RUN) == _mark(3)


def test_stops_just_before_the_first_failure() -> None:
    rows = [(_mark(1), True), (_mark(2), False), (_mark(3), True)]
    assert advance(None, rows, RUN) == _mark(1)
    assert advance(_mark(0), [(_mark(1), False)], RUN) == _mark(0)
    assert advance(None, [(_mark(1), False)], RUN) is None


def test_never_past_the_run_start_nor_backwards() -> None:
    late = Watermark(ts=RUN, id="006Z")
    assert advance(None, [(_mark(1), True), (late, True)], RUN) == _mark(1)
    assert advance(_mark(50), [(_mark(1), True)], RUN) == _mark(50)
    assert advance(_mark(5), [], RUN) == _mark(5)


ROWS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=20_000), st.sampled_from("ABC"), st.booleans()),
    max_size=30,
)


@given(st.none() | st.integers(min_value=0, max_value=20_000), ROWS)
def test_watermark_is_monotonic_bounded_and_safe(
    start: int | None, raw: list[tuple[int, str, bool]]
) -> None:
    current = None if start is None else _mark(start)
    rows = sorted((_mark(s, f"006{i}"), done) for s, i, done in raw)
    new = advance(current, rows, RUN)
    if current is not None:
        assert new is not None and new >= current  # never backwards
    if new is not None and new != current:
        assert new.ts < RUN  # never past the run start
        # every row up to the new watermark was done: nothing unprocessed is skipped
        assert all(
            done for mark, done in rows if mark <= new and (current is None or mark > current)
        )
