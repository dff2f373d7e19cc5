"""GoTrue's input checks shared by several endpoints (``validateEmail`` in internal/api/mail.go)."""

from __future__ import annotations

import re

from .errors import bad_request

# checkmail.ValidateFormat's pattern (github.com/badoux/checkmail).
_EMAIL = re.compile(
    r"^(?:(?:(?:(?:[a-zA-Z]|\d|[!#\$%&'\*\+\-\/=\?\^_`{\|}~])+(?:\.([a-zA-Z]|\d|[!#\$%&'\*\+\-\/=\?\^_`{\|}~])+)*)"
    r"|(?:(?:\x22)(?:(?:(?:(?:\x20|\x09)*(?:\x0d\x0a))?(?:\x20|\x09)+)?(?:(?:[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]|\x21"
    r"|[\x23-\x5b]|[\x5d-\x7e])|(?:\\[\x01-\x09\x0b\x0c\x0d-\x7f])))*(?:(?:(?:\x20|\x09)*(?:\x0d\x0a))?(\x20|\x09)+)?"
    r"(?:\x22))))@(?:(?:(?:[a-zA-Z]|\d)|(?:(?:[a-zA-Z]|\d)(?:[a-zA-Z]|\d|-|\.|~|_)*(?:[a-zA-Z]|\d)))\.)+"
    r"(?:(?:[a-zA-Z])|(?:(?:[a-zA-Z])(?:[a-zA-Z]|\d|-|\.|~|_)*(?:[a-zA-Z])))\.?$"
)


def validate_email(email: str) -> str:
    """The address in lower case, or 400 ``validation_failed`` with GoTrue's message."""
    if not email:
        raise bad_request("validation_failed", "An email address is required")
    if len(email) > 255:
        raise bad_request("validation_failed", "An email address is too long")
    if not _EMAIL.match(email):
        raise bad_request("validation_failed", "Unable to validate email address: invalid format")
    return email.lower()
