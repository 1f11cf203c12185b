"""Cabinet URLs. Included at the site root: the landing page is ``/``, the cabinet ``/cabinet/…``.

Organization pages carry the organization id (``/cabinet/<id>/…``) so two browser tabs on two
organizations never write into each other; access is still decided by the session.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from cabinet import views

app_name = "cabinet"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.landing, name="landing"),
    path("cabinet/install", views.install_start, name="install"),
    path("cabinet/", views.home, name="home"),
    path("cabinet/login", views.login, name="login"),
    path("cabinet/logout", views.logout, name="logout"),
    path("cabinet/organizations", views.organizations, name="organizations"),
    path("cabinet/organizations/add", views.organization_add, name="organization_add"),
    path(
        "cabinet/organizations/<int:org_id>/switch",
        views.organization_switch,
        name="organization_switch",
    ),
    path("cabinet/<int:org_id>/", views.dashboard, name="dashboard"),
    path("cabinet/<int:org_id>/missed", views.missed, name="missed"),
    path("cabinet/<int:org_id>/calls/<int:call_id>/retry", views.call_retry, name="call_retry"),
    path("cabinet/<int:org_id>/organization", views.organization_detail, name="organization"),
    path("cabinet/<int:org_id>/organization/numbers", views.numbers_save, name="numbers"),
    path("cabinet/<int:org_id>/organization/time-zone", views.time_zone_save, name="time_zone"),
    path(
        "cabinet/<int:org_id>/organization/delete",
        views.organization_remove,
        name="organization_delete",
    ),
    path("cabinet/<int:org_id>/call-settings", views.call_settings, name="call_settings"),
    path(
        "cabinet/<int:org_id>/call-settings/pipelines",
        views.call_settings_pipelines,
        name="call_settings_pipelines",
    ),
    path(
        "cabinet/<int:org_id>/call-settings/callbacks",
        views.callback_settings,
        name="callback_settings",
    ),
    path("cabinet/<int:org_id>/keys", views.keys, name="keys"),
    path("cabinet/<int:org_id>/keys/rotate", views.keys_rotate, name="keys_rotate"),
    path(
        "cabinet/<int:org_id>/recordings/revoke",
        views.recording_links_revoke_view,
        name="recording_links_revoke",
    ),
    path("cabinet/<int:org_id>/managers", views.managers, name="managers"),
    path("cabinet/<int:org_id>/managers/refresh", views.managers_refresh, name="managers_refresh"),
    path("cabinet/<int:org_id>/diagnostics", views.diagnostics, name="diagnostics"),
    path(
        "cabinet/<int:org_id>/diagnostics/check",
        views.diagnostics_check,
        name="diagnostics_check",
    ),
]
