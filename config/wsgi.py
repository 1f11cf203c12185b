"""WSGI entry point: Django, with Beeline's event webhook served in front of it by a bare
handler (``pbx.webhook_wsgi``: no middleware on the hottest path)."""

from config.entrypoint import settings_module_choose

settings_module_choose()

from django.core.wsgi import get_wsgi_application  # noqa: E402

django_application = get_wsgi_application()

from pbx.webhook_wsgi import webhook_router  # noqa: E402 (needs the settings chosen above)

application = webhook_router(django_application)
