"""Response headers that keep the dashboard safe, and opt-in CORS (``amqplite/http``, pure).

Every response carries a Content-Security-Policy allowing scripts, styles and fetches
from the broker's own origin only: no inline script or event-handler attribute, no
``eval``, no plugins, no framing.  The dashboard builds every name into the page as text
(never as markup); the policy is the second wall, so that a name that ever slipped in as
markup still could not run.  ``nosniff`` stops a JSON body being taken for a script;
``no-referrer`` keeps API paths (which name queues) out of other sites' logs.

CORS is off unless origins are configured: then a request whose ``Origin`` is one of
them gets ``Access-Control-Allow-Origin`` naming it (never ``*``: requests carry
credentials), and preflight ``OPTIONS`` requests from them are answered.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from amqplite.http.request import Request, Response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
)
_PREFLIGHT = (
    ("access-control-allow-methods", "GET, HEAD, PUT, POST, DELETE"),
    ("access-control-allow-headers", "authorization, content-type, x-requested-with"),
    ("access-control-max-age", "600"),
)


def _cors(request: Request, origins: Collection[str]) -> tuple[tuple[str, str], ...]:
    origin = request.headers.get("origin")
    if not origins or origin is None or origin not in origins:
        return ()
    return (
        ("access-control-allow-origin", origin),
        ("access-control-allow-credentials", "true"),
        ("vary", "Origin"),
    )


def preflight(request: Request, origins: Collection[str]) -> Response | None:
    """The answer to a CORS preflight from an allowed origin (None: not one)."""
    if request.method != "OPTIONS":
        return None
    allowed = _cors(request, origins)
    if not allowed:
        return None
    return Response(204, b"", None, allowed + _PREFLIGHT)


def secured(response: Response, request: Request, origins: Collection[str]) -> Response:
    """``response`` with the security headers (and CORS headers, if the origin is allowed)."""
    return attrs.evolve(
        response, headers=response.headers + SECURITY_HEADERS + _cors(request, origins)
    )
