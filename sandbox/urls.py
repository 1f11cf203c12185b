from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("amocrm/", include("sandbox.amocrm.urls")),
    path("beeline/", include("sandbox.beeline.urls")),
]
