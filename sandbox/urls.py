from __future__ import annotations

from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("", TemplateView.as_view(template_name="sandbox/home.html"), name="sandbox_home"),
    path("amocrm/", include("sandbox.amocrm.urls")),
    path("beeline/", include("sandbox.beeline.urls")),
]
