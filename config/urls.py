from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config import metrics
from core import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("healthz/redis", health.healthz_redis, name="healthz-redis"),
    # Browsers ask for /favicon.ico on pages that do not name an icon (API answers, PDFs).
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg")),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("amocrm/", include("crm.urls")),
    path("", include("pbx.urls")),
    path("", include("cabinet.urls")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
