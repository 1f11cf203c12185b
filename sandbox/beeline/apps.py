from django.apps import AppConfig


class SandboxBeelineConfig(AppConfig):
    name = "sandbox.beeline"
    label = "sandbox_beeline"
    verbose_name = "Sandbox: Beeline emulator"
