"""Readers for the value kinds used in config files: durations, sizes, URLs, addresses.

Each reader takes the raw TOML (or environment) value and returns the typed value, or
raises ``ValueError`` with a reason short enough to follow "file: key: ".
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsdesk.message import split_address

T = TypeVar("T")
Reader = Callable[[Any], T]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_LONGEST = 366 * 86400  # no duration newsdesk reads is longer than a year
_CRON_FIELD = re.compile(r"^[\d*/,\-a-z]+$", re.IGNORECASE)


def read_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_kind(value)}")
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value.strip()


def read_nonempty(value: Any) -> str:
    text = read_str(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def read_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {_show(value)}")


def read_int(low: int | None = None, high: int | None = None) -> Reader[int]:
    def read(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {_show(value)}")
        _check_range(value, low, high)
        return value

    return read


def read_float(low: float | None = None, high: float | None = None) -> Reader[float]:
    def read(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {_show(value)}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {_show(value)}")
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {_show(value)}")
        _check_range(value, low, high)
        return float(value)

    return read


def read_duration(low: timedelta | None = None, high: timedelta | None = None) -> Reader[timedelta]:
    """``"30m"``, ``"1.5h"``, ``"7d"``; a bare number is seconds."""

    def read(value: Any) -> timedelta:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.match(value)):
            amount, unit = match.groups()
            seconds = float(amount) * _DURATION_UNITS[unit.lower()]
        else:
            raise ValueError(
                f"expected a duration like '30s', '10m', '6h' or '7d', got {_show(value)}"
            )
        if not math.isfinite(seconds) or seconds > _LONGEST:
            raise ValueError(f"must be at most {format_duration(timedelta(seconds=_LONGEST))}")
        result = timedelta(seconds=seconds)
        if low is not None and result < low:
            raise ValueError(f"must be at least {format_duration(low)}")
        if high is not None and result > high:
            raise ValueError(f"must be at most {format_duration(high)}")
        return result

    return read


def read_size(low: int | None = None, high: int | None = None) -> Reader[int]:
    """``"10MB"``, ``"512KiB"``; a bare number is bytes."""

    def read(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        elif isinstance(value, str) and (match := _SIZE.match(value)):
            amount, unit = match.groups()
            result = int(float(amount) * _SIZE_UNITS[(unit or "b").lower()])
        else:
            raise ValueError(f"expected a size like '10MB' or '512KiB', got {_show(value)}")
        _check_range(result, low, high)
        return result

    return read


def read_choice(*choices: str) -> Reader[str]:
    def read(value: Any) -> str:
        text = read_str(value)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {_show(value)}")
        return text

    return read


def read_str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # env overrides: comma-separated
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ValueError(f"expected a list of strings, got {_kind(value)}")
    return tuple(read_nonempty(item) for item in value)


def read_http_url(value: Any) -> str:
    text = read_nonempty(value)
    parts = urlsplit(text)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError("not an http(s) URL")
    return text


def read_feed_url(value: Any) -> str:
    """http(s) URLs, and ``file:`` URLs for local sample feeds (allowed separately)."""
    text = read_nonempty(value)
    if text.lower().startswith("file:"):
        return text
    return read_http_url(text)


def read_network(value: Any) -> str:
    text = read_nonempty(value)
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(f"not an IP network like '10.0.0.0/8', got {_show(value)}") from None


def read_networks(value: Any) -> tuple[str, ...]:
    return tuple(read_network(item) for item in read_str_list(value))


def read_timezone(value: Any) -> str:
    text = read_nonempty(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {_show(text)} (use e.g. 'Europe/Berlin')") from None
    return text


def read_address(value: Any) -> str:
    """An email address, optionally with a display name: ``Name <a@example.org>``."""
    text = read_nonempty(value)
    _, address = split_address(text)
    local, _, domain = address.rpartition("@")
    if not local or not domain or " " in address or address.count("@") != 1:
        raise ValueError(f"not an email address: {_show(text)}")
    return text


def read_cron(value: Any) -> str:
    """Five cron fields (minute hour day month weekday), or six with seconds first.

    The values are checked by building the scheduler's trigger, so a config that loads
    is one the daemon can schedule.
    """
    text = read_nonempty(value)
    fields = text.split()
    if len(fields) not in (5, 6) or not all(_CRON_FIELD.match(field) for field in fields):
        raise ValueError(f"expected five cron fields like '0 7 * * mon', got {_show(text)}")
    from newsdesk.scheduler.triggers import cron_trigger

    try:
        cron_trigger(text, "UTC")
    except ValueError as exc:
        raise ValueError(f"{_show(text)}: {exc}") from None
    return text


def read_language(value: Any) -> str:
    text = read_nonempty(value)
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", text):
        raise ValueError(f"expected a language code like 'de' or 'en', got {_show(text)}")
    return text


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _check_range(value: float, low: float | None, high: float | None) -> None:
    if low is not None and value < low:
        raise ValueError(f"must be at least {low}")
    if high is not None and value > high:
        raise ValueError(f"must be at most {high}")


def _kind(value: Any) -> str:
    return {dict: "a table", list: "a list", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
