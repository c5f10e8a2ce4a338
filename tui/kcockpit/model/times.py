"""Points in time as `hubble observe --since/--until` takes them: a duration back from now
(`90s`, `5m`, `1h30m`, Go's units ns us µs ms s m h) or an RFC 3339 timestamp
(`2026-12-04T20:00:00Z`, `2026-12-04T21:00:00+01:00`, fractions allowed)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

NS = 1_000_000_000
_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": NS, "m": 60 * NS, "h": 3600 * NS}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


class TimeError(ValueError):
    """Not a duration or a timestamp; the message says what is accepted."""


def parse_duration_ns(text: str) -> int | None:
    """`1h30m` -> nanoseconds; None when `text` is not a Go-style duration."""
    text = text.strip()
    if not text:
        return None
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNITS_NS[match.group(2)]
        position = match.end()
    return int(total) if position == len(text) else None


def parse_time_ns(text: str, now_ns: int) -> int:
    """A --since/--until value as unix nanoseconds (durations count back from `now_ns`)."""
    duration = parse_duration_ns(text)
    if duration is not None:
        return now_ns - duration
    candidate = text.strip().replace(" ", "T", 1)
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        raise TimeError(
            f"{text!r} is neither a duration (e.g. 90s, 5m, 1h30m) nor an RFC 3339 time (e.g. 2026-12-04T20:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    since_epoch = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (since_epoch.days * 86_400 + since_epoch.seconds) * NS + since_epoch.microseconds * 1_000
