"""Small display filters of the cabinet."""

from __future__ import annotations

from datetime import date, datetime

from django import template

from cabinet import formatting
from integration.callbacks import wait_text

register = template.Library()


@register.filter
def when(value: datetime | date | None) -> str:
    """Every date and time in the cabinet: ``{{ value|when }}`` (cabinet/formatting.py)."""
    return formatting.when(value)


@register.filter
def duration(seconds: int | None) -> str:
    """Talk time as ``m:ss`` (``h:mm:ss`` past an hour); empty for no talk."""
    if not seconds:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def wait(seconds: float | None) -> str:
    """A wait as people say it: «12 мин», «1 ч 5 мин»; «—» for none."""
    if seconds is None:
        return "—"
    return wait_text(int(seconds))
