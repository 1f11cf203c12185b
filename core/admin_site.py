"""The admin site of support staff: django-otp's OTPAdminSite whenever STAFF_REQUIRE_2FA is on.

Read per request, so one setting switches the login form (username, password and a TOTP code)
and the access rule (the session must have passed a device) without a second URL tree.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


def staff_2fa_required() -> bool:
    return bool(getattr(settings, "STAFF_REQUIRE_2FA", False))


class StaffAdminSite(OTPAdminSite):  # type: ignore[misc]  # django-otp ships no types
    site_header = "Beetel · поддержка"
    site_title = "Beetel"

    def __init__(self, name: str = "admin") -> None:
        # Keep the "admin" URL namespace (OTPAdminSite would default to "otpadmin").
        super().__init__(name)

    @property
    def login_form(self) -> Any:
        return OTPAdminAuthenticationForm if staff_2fa_required() else AdminAuthenticationForm

    @property
    def login_template(self) -> str | None:
        return OTPAdminSite.login_template if staff_2fa_required() else None

    def has_permission(self, request: HttpRequest) -> bool:
        if staff_2fa_required():
            return bool(super().has_permission(request))
        return AdminSite.has_permission(self, request)
