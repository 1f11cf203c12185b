from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path, re_path

from sandbox.amocrm import api, api_crm, api_unsorted, api_webhooks, views
from sandbox.amocrm.widget_host.views import contact_page

app_name = "sandbox_amocrm"

urlpatterns: list[URLPattern | URLResolver] = [
    # The page that hosts our widget the way amoCRM does (owned by the widget's authors).
    path("widget-host/", include("sandbox.amocrm.widget_host.urls")),
    # Pages
    path("", views.index, name="index"),
    path("accounts/<int:account_id>/", views.account_detail, name="account"),
    # The contact card at amoCRM's own path, with the widget loaded as amoCRM loads it.
    path("contacts/detail/<int:contact_id>", contact_page, name="contact"),
    path("accounts/<int:account_id>/faults", views.account_faults, name="account_faults"),
    path("accounts/<int:account_id>/users", views.account_user_add, name="account_user_add"),
    path(
        "accounts/<int:account_id>/contacts", views.account_contact_add, name="account_contact_add"
    ),
    path(
        "accounts/<int:account_id>/contacts/<int:contact_id>/responsible",
        views.account_contact_responsible,
        name="account_contact_responsible",
    ),
    path(
        "accounts/<int:account_id>/contacts/<int:contact_id>/delete",
        views.account_contact_delete,
        name="account_contact_delete",
    ),
    path(
        "accounts/<int:account_id>/unsorted/<str:uid>/<slug:decision>",
        views.account_unsorted_decide,
        name="account_unsorted_decide",
    ),
    path(
        "accounts/<int:account_id>/pipelines",
        views.account_pipeline_add,
        name="account_pipeline_add",
    ),
    path(
        "accounts/<int:account_id>/actions/<slug:action>",
        views.account_action,
        name="account_action",
    ),
    # OAuth
    path("oauth", views.oauth_authorize, name="oauth_authorize"),
    path("oauth2/access_token", views.oauth_access_token, name="oauth_access_token"),
    # API. Every path under the emulator that none of these serve answers 404 problem+json
    # (the catch-all last), and a wrong method 405 problem+json (sandbox.amocrm.gate).
    path("api/v4/account", api.account_view, name="api_account"),
    path("api/v4/users", api.users_view, name="api_users"),
    path("api/v4/users/<int:user_id>", api.user_detail_view, name="api_user"),
    path("api/v4/contacts", api.contacts_view, name="api_contacts"),
    path("api/v4/contacts/<int:contact_id>", api.contact_detail_view, name="api_contact"),
    path("api/v4/calls", api.calls_view, name="api_calls"),
    path("api/v4/leads", api_crm.leads_view, name="api_leads"),
    path("api/v4/leads/<int:lead_id>", api_crm.lead_detail_view, name="api_lead"),
    path("api/v4/leads/pipelines", api_crm.pipelines_view, name="api_pipelines"),
    path(
        "api/v4/leads/pipelines/<int:pipeline_id>",
        api_crm.pipeline_detail_view,
        name="api_pipeline",
    ),
    path(
        "api/v4/leads/pipelines/<int:pipeline_id>/statuses",
        api_crm.pipeline_statuses_view,
        name="api_pipeline_statuses",
    ),
    path("api/v4/leads/unsorted/sip", api.unsorted_sip_view, name="api_unsorted_sip"),
    path("api/v4/leads/unsorted", api_unsorted.unsorted_list_view, name="api_unsorted"),
    path(
        "api/v4/leads/unsorted/<str:uid>",
        api_unsorted.unsorted_detail_view,
        name="api_unsorted_entry",
    ),
    path(
        "api/v4/leads/unsorted/<str:uid>/accept",
        api_unsorted.unsorted_accept_view,
        name="api_unsorted_accept",
    ),
    path(
        "api/v4/leads/unsorted/<str:uid>/decline",
        api_unsorted.unsorted_decline_view,
        name="api_unsorted_decline",
    ),
    path("api/v4/webhooks", api_webhooks.webhooks_view, name="api_webhooks"),
    re_path(
        r"^api/v4/(?P<entity>contacts|leads)/notes$",
        api_crm.entity_notes_view,
        name="api_entity_notes",
    ),
    re_path(
        r"^api/v4/(?P<entity>contacts|leads)/(?P<entity_id>\d+)/notes$",
        api_crm.entity_notes_of_view,
        name="api_notes_of",
    ),
    re_path(
        r"^api/v4/(?P<entity>contacts|leads)/(?P<entity_id>\d+)/notes/(?P<note_id>\d+)$",
        api_crm.note_detail_view,
        name="api_note",
    ),
    path("api/v4/tasks", api_crm.tasks_view, name="api_tasks"),
    path("api/v4/tasks/<int:task_id>", api_crm.task_detail_view, name="api_task"),
    path("api/v2/events", api.events_v2_view, name="api_events_v2"),
    re_path(r"^(?P<rest>.*)$", api.api_not_found),
]
