from config.entrypoint import settings_module_choose

settings_module_choose()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
