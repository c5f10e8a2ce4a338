"""--since/--until values as `hubble observe` takes them."""

import pytest

from kcockpit.model.times import NS, TimeError, parse_duration_ns, parse_time_ns

NOW = 1_767_225_600 * NS


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5h", 5400), ("250ms", 0.25)])
def test_durations_count_back_from_now(text, seconds) -> None:
    assert parse_time_ns(text, NOW) == NOW - int(seconds * NS)


def test_rfc3339_times_with_zone_offset_or_fraction() -> None:
    assert parse_time_ns("2026-01-01T00:00:00Z", 0) == NOW
    assert parse_time_ns("2026-01-01T01:00:00+01:00", 0) == NOW
    assert parse_time_ns("2026-01-01T00:00:00.250Z", 0) == NOW + NS // 4


@pytest.mark.parametrize("text", ["yesterday", "5 minutes", "-5m", "m5", ""])
def test_anything_else_is_refused_with_the_accepted_forms(text) -> None:
    with pytest.raises(TimeError, match="neither a duration .* nor an RFC 3339 time"):
        parse_time_ns(text, NOW)
    assert parse_duration_ns(text) is None
