"""Phone numbers, normalized once: duplicate contacts from "+7", "8", spaces are the classic
connector failure (docs/architecture.md «Code conventions»).

Russian numbers are the common case: amoCRM profiles hold 10 digits, Beeline sends
``tel:+7…`` or 10/11 digits. Everything is parsed with ``phonenumbers`` and exposed as E.164
(what we write to amoCRM) and the 10 national digits (what we search and index by).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

DEFAULT_REGION = "RU"
_TEL_PREFIX = re.compile(r"^(tel:|sip:)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str  # +79161234567
    national: str  # 9161234567 (Russian numbers); the national significant number otherwise

    def __str__(self) -> str:
        return self.e164


def phone_parse(raw: str | None, *, region: str = DEFAULT_REGION) -> Phone | None:
    """Parse anything a person or a PBX may write; None when it is not a plausible number.

    Accepts ``tel:+7…``, ``sip:9161234567@host``, ``8 (916) 123-45-67``, ``+7 916 …``, 10 bare
    digits (a Russian national number) and 11 digits starting with 7 or 8.
    """
    if not raw:
        return None
    text = _TEL_PREFIX.sub("", raw.strip()).split("@", 1)[0].split(";", 1)[0]
    digits = re.sub(r"\D", "", text)
    if not digits or len(digits) > 15:
        return None
    if not text.lstrip().startswith("+"):
        if len(digits) == 11 and digits[0] in "78" and region == "RU":
            text = "+7" + digits[1:]
        elif len(digits) == 10 and region == "RU":
            text = "+7" + digits
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164=e164, national=phonenumbers.national_significant_number(parsed))


def phone_national(raw: str | None) -> str | None:
    """The 10 national digits (for Russian numbers), or None."""
    phone = phone_parse(raw)
    return phone.national if phone else None
