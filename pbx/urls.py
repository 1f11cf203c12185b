from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from pbx import views

app_name = "pbx"

# [contract: docs/architecture.md Public URLs] Mounted at the site root by config/urls.py.
urlpatterns: list[URLPattern | URLResolver] = [
    path("beeline/events/<str:secret>", views.beeline_events, name="beeline_events"),
    # Beeline has been seen posting to "<url>/null" (docs/beeline-api.md §6.1):
    # tolerate one segment.
    path("beeline/events/<str:secret>/<str:extra>", views.beeline_events),
    path("recordings/<str:token>", views.recording, name="recording"),
]
