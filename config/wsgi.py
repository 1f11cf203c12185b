"""WSGI entry point: the full Django stack, and a lean one for Beeline's event webhook
(``config.handlers``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
full_application = get_wsgi_application()

from django.conf import settings  # noqa: E402 (after the settings module is chosen)

from config.handlers import LeanWSGIHandler, path_router  # noqa: E402

application = path_router(full_application, LeanWSGIHandler(), tuple(settings.LEAN_PATH_PREFIXES))
