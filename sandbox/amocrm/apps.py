from django.apps import AppConfig


class SandboxAmocrmConfig(AppConfig):
    name = "sandbox.amocrm"
    label = "sandbox_amocrm"
    verbose_name = "Sandbox: amoCRM emulator"
