"""What the instance says about itself: ``/health``, ``/settings``, and ``/signup`` (disabled).

Sources: internal/api/api.go (``HealthCheck``), settings.go (``Settings``), signup.go (the
``DisableSignup`` check comes before anything else). Operators are invited, not self-registered,
so this double runs with sign-ups disabled and answers ``/signup`` as GoTrue then does.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .context import AuthContext
from .errors import unprocessable
from .wire import send_json

VERSION = "v2-devstack"  # not a GoTrue release: the local double
EXTERNAL_PROVIDERS = (
    "anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook", "figma", "fly", "github", "gitlab",
    "google", "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "spotify", "slack", "slack_oidc",
    "workos", "twitch", "twitter", "email", "phone", "zoom",
)  # fmt: skip


async def health(request: Request, auth: AuthContext) -> Response:
    description = "GoTrue is a user registration and authentication API"
    return send_json(200, {"version": VERSION, "name": "GoTrue", "description": description})


async def settings(request: Request, auth: AuthContext) -> Response:
    external = {name: name == "email" for name in EXTERNAL_PROVIDERS}
    return send_json(
        200,
        {
            "external": external,
            "disable_signup": True,
            "mailer_autoconfirm": False,
            "phone_autoconfirm": False,
            "sms_provider": "twilio",
            "saml_enabled": False,
        },
    )


async def signup(request: Request, auth: AuthContext) -> Response:
    raise unprocessable("signup_disabled", "Signups not allowed for this instance")
