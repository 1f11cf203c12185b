"""One date/time format per language for the whole product (Django's own are mixed: «1 декабря
2026 г. 0:33» beside «01.12.2026 00:33»). Times are 24-hour in both languages."""

from __future__ import annotations

DATE_FORMAT = "d.m.Y"
SHORT_DATE_FORMAT = "d.m.Y"
DATETIME_FORMAT = "d.m.Y H:i"
SHORT_DATETIME_FORMAT = "d.m.Y H:i"
TIME_FORMAT = "H:i"
