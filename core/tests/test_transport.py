from __future__ import annotations

import pytest

from core.transport import TransportError, retry_after_seconds


class Refused(TransportError):
    permanent = True


def test_flags_default_to_a_transient_failure_and_arguments_override_class_defaults():
    plain = TransportError("down")
    assert plain.transient and not (plain.permanent or plain.rate_limited or plain.auth)
    assert plain.status is None and plain.retry_after is None and str(plain) == "down"
    assert Refused("no").permanent and not Refused("no").transient
    assert Refused("not yet", permanent=False, status=404).transient
    limited = TransportError("slow down", rate_limited=True, retry_after=2.5, status=429)
    assert (limited.rate_limited, limited.retry_after, limited.status) == (True, 2.5, 429)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("", None), ("12", 12.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None),
     ("inf", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None)],
)  # fmt: skip
def test_retry_after_header(header, seconds):
    assert retry_after_seconds(header) == seconds
