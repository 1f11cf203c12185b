"""The OAuth ``state`` of «Установить в amoCRM», kept in a signed cookie instead of a session.

An anonymous visitor pressing the button must not cost a session row in the database, yet the
callback still has to recognise a state this browser was given. The pending states (at most a
few, with their mode) travel in an HttpOnly, SameSite=Lax cookie signed with SECRET_KEY that
expires with the authorization code's lifetime; amoCRM's redirect back to us is a top-level
GET, so the browser sends it.
"""

from __future__ import annotations

import json
from typing import Any

from django.core import signing
from django.http import HttpRequest, HttpResponse

COOKIE = "beetel_oauth"
_SALT = "crm.oauth-state"
MAX_AGE = 20 * 60  # amoCRM's authorization codes live 20 minutes


class OAuthStateCookie(dict[str, Any]):
    """A mapping ``crm.selectors.amo_authorize_url`` / ``amo_oauth_state_pop`` work on."""

    changed = False

    @classmethod
    def read(cls, request: HttpRequest) -> OAuthStateCookie:
        try:
            data = request.get_signed_cookie(COOKIE, salt=_SALT, max_age=MAX_AGE)
        except (KeyError, signing.BadSignature):
            return cls()
        try:
            loaded = json.loads(data or "")
        except ValueError:
            return cls()
        return cls(loaded) if isinstance(loaded, dict) else cls()

    def __setitem__(self, key: str, value: Any) -> None:
        self.changed = True
        super().__setitem__(key, value)

    def write(self, response: HttpResponse, *, secure: bool) -> None:
        if not self.changed:
            return
        response.set_signed_cookie(
            COOKIE,
            json.dumps(dict(self), separators=(",", ":")),
            salt=_SALT,
            max_age=MAX_AGE,
            httponly=True,
            secure=secure,
            samesite="Lax",
        )
