from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from crm import views, views_widget

app_name = "crm"

# Mounted at /amocrm/ [contract: docs/architecture.md "Public URLs"].
urlpatterns: list[URLPattern | URLResolver] = [
    path("oauth/callback", views.oauth_callback, name="oauth_callback"),
    path("installed", views.install_result, name="install_result"),
    path("disconnect", views.disconnect, name="disconnect"),
    path("widget/status", views_widget.widget_status, name="widget_status"),
    path("widget/call", views_widget.widget_call, name="widget_call"),
    path("webhooks/<str:secret>", views.webhooks, name="webhooks"),
]
