"""One date/time format per language for the whole product. English: day, month name, 24-hour
time («1 Dec 2026, 21:33»), never «9:33 p.m.» (which a sentence's full stop turns into «p.m..»)."""

from __future__ import annotations

DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
