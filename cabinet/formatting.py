"""The one way the cabinet writes a moment: in the current time zone (the organization's, set by
``access.organization_required``) with the current language's SHORT_DATETIME_FORMAT
(config/formats/)."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats, timezone


def when(value: datetime | date | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return formats.date_format(value, "SHORT_DATETIME_FORMAT")
    return formats.date_format(value, "SHORT_DATE_FORMAT")
