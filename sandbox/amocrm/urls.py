from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    # The page that hosts our widget the way amoCRM does (owned by the widget's authors).
    path("widget-host/", include("sandbox.amocrm.widget_host.urls")),
]
