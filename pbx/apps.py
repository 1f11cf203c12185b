from django.apps import AppConfig


class PbxConfig(AppConfig):
    name = "pbx"
    verbose_name = "Beeline"
