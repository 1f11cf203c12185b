from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class BeetelAdminConfig(AdminConfig):
    """django.contrib.admin with the support staff's site (core/admin_site.py)."""

    default_site = "core.admin_site.StaffAdminSite"
