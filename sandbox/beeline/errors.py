"""Errors of the emulated portal API, rendered as Beeline's ``{errorCode, description}``."""

from __future__ import annotations


class PortalError(Exception):
    """Raised by the emulator's services; the API layer turns it into a JSON error response.

    The errorCode values are ours: no public list exists (docs/beeline-api.md §1), only the shape.
    """

    def __init__(self, status: int, error_code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error_code = error_code
        self.description = description

    def as_json(self) -> dict[str, str]:
        return {"errorCode": self.error_code, "description": self.description}


def bad_request(description: str) -> PortalError:
    return PortalError(400, "BadRequest", description)


def not_found(error_code: str, description: str) -> PortalError:
    return PortalError(404, error_code, description)
