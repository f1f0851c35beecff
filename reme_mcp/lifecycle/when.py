"""Times and durations as people and agents type them: ISO 8601, or relative ("7d", "12h", "yesterday").

Every time is UTC. A date without a time is its midnight; a time without a zone is UTC,
so `2026-05-01` means the same on every machine.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w|y)?", re.IGNORECASE)
_RELATIVE = re.compile(r"\d+(?:\.\d+)?\s*[smhdwy]", re.IGNORECASE)
_AGO = re.compile(r"\s*ago$", re.IGNORECASE)

DURATION_HELP = "a number and a unit: s, m, h, d, w or y (30d, 12h, 90m), or plain seconds"


def parse_duration(text: str | int | float) -> float:
    """Seconds in "30d", "12h", "1.5w" or 3600."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.fullmatch(str(text).strip())
        if match is None:
            raise ValueError(f"{text!r} is not a duration: use {DURATION_HELP}")
        seconds = float(match[1]) * _UNITS[(match[2] or "s").lower()]
    if not 0 < seconds < 1000 * _UNITS["y"]:
        raise ValueError(f"duration {text!r} must be more than 0 and under 1000 years")
    return seconds


def parse_instant(text: str, now: datetime) -> datetime:
    """A moment: ISO 8601 (2026-05-01, 2026-05-01T09:30, ...Z, ...+02:00), "now", "today", "yesterday",
    or a duration before now ("7d", "7d ago")."""
    value = text.strip()
    word = value.lower()
    if word == "now":
        return now
    if word in ("today", "yesterday"):
        midnight = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=1 if word == "yesterday" else 0)
    relative = _AGO.sub("", value)
    if _RELATIVE.fullmatch(relative):  # a unit is required: a bare "2026" is not "2026 seconds ago"
        return now - timedelta(seconds=parse_duration(relative))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use ISO 8601 (2026-05-01 or 2026-05-01T09:30:00Z), now, today, yesterday, "
            f"or a duration back from now (7d, 12h)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _storable(value: datetime) -> datetime:
    # The store keeps POSIX seconds and reads them back as UTC: 9999-12-31T23:00-05:00 is in year 10000 there,
    # and once stored would break every read of its workspace.
    try:
        datetime.fromtimestamp(utc(value).timestamp(), tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        raise ValueError(f"{value.isoformat()} is out of range: give a time from year 1 to 9999 in UTC") from None
    return value


Instant = Annotated[datetime, AfterValidator(_storable)]


def _check_instant(value: str) -> str:
    parse_instant(value, datetime.now(timezone.utc))  # refuse a bad time when the call is validated
    return value


def _check_duration(value: Any) -> str:
    parse_duration(value)
    return str(value)


When = Annotated[
    str | None,
    AfterValidator(lambda v: v if v is None else _check_instant(v)),
    Field(description="ISO 8601 (2026-05-01, 2026-05-01T09:30Z), today, yesterday, or relative: 7d, 12h (ago)."),
]


def _number_as_text(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, int) and value.bit_length() > 64:  # str() of a 5,000-digit number is refused anyway
        raise ValueError(f"{value.bit_length() * 0.30103:,.0f}-digit seconds: a duration must be under 1000 years")
    return str(value)


Duration = Annotated[
    str | None,
    BeforeValidator(_number_as_text),
    AfterValidator(lambda v: v if v is None else _check_duration(v)),
    Field(description=f"How long to keep it: {DURATION_HELP}."),
]
