from config.entrypoint import settings_module_choose

settings_module_choose()

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
