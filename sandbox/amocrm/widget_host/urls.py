from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from sandbox.amocrm.widget_host import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.host_page, name="sandbox_widget_host"),
    path("token", views.host_token, name="sandbox_widget_host_token"),
    path("script.js", views.widget_script, name="sandbox_widget_host_script"),
]
