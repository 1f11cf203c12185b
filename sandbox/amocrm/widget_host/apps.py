from django.apps import AppConfig


class WidgetHostConfig(AppConfig):
    name = "sandbox.amocrm.widget_host"
    label = "sandbox_widget_host"
    verbose_name = "Sandbox: amoCRM widget host page"
