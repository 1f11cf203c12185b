"""/sandbox/beeline/: the emulated portal API (BEELINE_API_URL points here) and its pages."""

from __future__ import annotations

from django.urls import URLPattern, path, re_path

from sandbox.beeline import api, api_features, views

app_name = "sandbox_beeline"

# The real API has no trailing slashes; a tolerated one costs nothing.
urlpatterns: list[URLPattern] = [
    # Pages (the API has no "pbx/" path, so the two never collide).
    path("", views.index, name="index"),
    path("pbx/<int:pbx_id>/", views.pbx_page, name="pbx"),
    path("pbx/<int:pbx_id>/events/<int:event_id>/", views.event_body, name="event_body"),
    path("pbx/<int:pbx_id>/records/<int:record_pk>.mp3", views.record_listen, name="record_listen"),
    # Portal API (docs/beeline-api.md). Every other path answers 404 {errorCode, description} (the
    # catch-all last) and a wrong method 405 in the same format (api.portal_api).
    re_path(r"^abonents/?$", api.abonents_list, name="api_abonents"),
    re_path(r"^abonents/(?P<pattern>[^/]+)/?$", api.abonent_detail, name="api_abonent"),
    re_path(
        r"^abonents/(?P<pattern>[^/]+)/recording/?$",
        api_features.abonent_recording,
        name="api_abonent_recording",
    ),
    re_path(r"^(?:v2/)?abonents/(?P<pattern>[^/]+)/call/?$", api.abonent_call, name="api_call"),
    re_path(r"^abonents/(?P<pattern>[^/]+)/cfb/?$", api_features.abonent_cfb, name="api_cfb"),
    re_path(r"^abonents/(?P<pattern>[^/]+)/cfs/?$", api_features.abonent_cfs, name="api_cfs"),
    re_path(
        r"^abonents/(?P<pattern>[^/]+)/cfs/(?P<rule_id>[^/]+)/?$",
        api_features.abonent_cfs_rule,
        name="api_cfs_rule",
    ),
    re_path(r"^numbers/?$", api.numbers_list, name="api_numbers"),
    re_path(r"^numbers/(?P<pattern>[^/]+)/?$", api.number_detail, name="api_number"),
    re_path(r"^icr/numbers/?$", api_features.icr_numbers, name="api_icr_numbers"),
    re_path(r"^icr/route/?$", api_features.icr_route, name="api_icr_route"),
    re_path(r"^subscription/?$", api.subscription, name="api_subscription"),
    re_path(r"^records/?$", api.records_list, name="api_records"),
    # Reference links: documented without v2 (beeline_portal), tolerated with it. Before the
    # {externalId}/{userId} patterns, which "123/reference" would otherwise match.
    re_path(
        r"^(?:v2/)?records/(?P<record_id>\d+)/reference/?$",
        api.record_reference,
        name="api_record_reference",
    ),
    re_path(
        r"^(?:v2/)?records/(?P<ext_tracking_id>[^/]+)/(?P<user_id>[^/]+)/reference/?$",
        api.record_by_tracking_reference,
        name="api_record_tracking_reference",
    ),
    re_path(
        r"^downloadCallRecording/(?P<token>[^/]+)/?$",
        api.record_public_download,
        name="record_public_download",
    ),
    re_path(r"^v2/records/(?P<record_id>\d+)/?$", api.record_detail, name="api_record"),
    re_path(
        r"^v2/records/(?P<record_id>\d+)/download/?$",
        api.record_download,
        name="api_record_download",
    ),
    re_path(
        r"^v2/records/(?P<ext_tracking_id>[^/]+)/(?P<user_id>[^/]+)/download/?$",
        api.record_by_tracking_download,
        name="api_record_tracking_download",
    ),
    re_path(
        r"^v2/records/(?P<ext_tracking_id>[^/]+)/(?P<user_id>[^/]+)/?$",
        api.record_by_tracking_detail,
        name="api_record_tracking",
    ),
    re_path(r"^statistics/?$", api.statistics_v1, name="api_statistics_v1"),
    re_path(r"^v2/statistics/?$", api.statistics_v2, name="api_statistics"),
    re_path(r"^(?P<rest>.*)$", api.not_found_view),
]
