"""The app's routes as the security tests see them: read from the route table, never listed by hand.

Only the public routes are named here, on purpose: making a route public is a decision a
reviewer should see in this file.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from aiohttp import web

from handlers.endpoint import Endpoint, endpoint_of
from service.common.models import ALL_ROLES

# (METHOD, path template) of every route that answers without a token.
PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/static/{name}"),
        # The staff console's static files: the app itself signs in through the API.
        ("GET", "/"),
        ("GET", "/console"),
        ("GET", "/console/{tail}"),
        ("GET", "/console/data/anhui_counties.geojson"),
        # The plan map's division outlines (public boundary data, like the county polygons).
        ("GET", "/console/data/anhui_divisions.json"),
        # The resident app's static files (H5): it too signs in through the API.
        ("GET", "/h5"),
        ("GET", "/h5/{tail}"),
        ("GET", "/api/v1/scenarios"),
        ("GET", "/api/v1/services"),
        ("GET", "/api/v1/services/{code}"),
        ("GET", "/api/v1/stations"),
        ("GET", "/api/v1/stations/{id}"),
        # The address picker (省市县乡) runs before the resident signs in, like the station list.
        ("GET", "/api/v1/divisions"),
        ("POST", "/api/v1/auth/wechat"),
        ("POST", "/api/v1/auth/otp"),
        ("POST", "/api/v1/auth/otp/verify"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", "/oauth/token"),
        # The mini program asks for subscription consent before the resident signs in.
        ("GET", "/api/v1/notification-templates"),
        # Anyone holding a volunteer certificate (or its QR code) can check it: masked name, hours, valid or revoked.
        ("GET", "/verify/{code}"),
        # Open311 GeoReport v2: public at the gate as the spec requires; the routes that read or
        # write requests authenticate with an api_key inside (see API_KEY_FIELD and the matrix).
        *(
            (method, f"/open311/v2/{name}{ext}")
            for method, name in (
                ("GET", "discovery"),
                ("GET", "services"),
                ("GET", "services/{service_code}"),
                ("POST", "requests"),
                ("GET", "requests"),
                ("GET", "requests/{service_request_id}"),
                ("GET", "tokens/{token}"),
            )
            for ext in ("", ".{format}")
        ),
    }
)
# A route whose body or query schema has this field authenticates callers by key, not token.
API_KEY_FIELD = "api_key"

# A plausible value for a path parameter: ids are 24-hex ObjectIds, codes are snake_case.
OBJECT_ID = "65a0c0ffee0000000000beef"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
PARAM_SAMPLES = {"code": "elderly_home_visit", "name": "swagger-ui.css", "format": "json"}


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # template, e.g. /api/v1/cases/{case_id}
    meta: Endpoint | None

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, **values: str) -> str:
        """The template with plausible values in its parameters (or the ones given)."""

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            return values.get(name, PARAM_SAMPLES.get(name, OBJECT_ID))

        return _PARAM.sub(fill, self.path)

    @property
    def input_names(self) -> set[str]:
        """Every field name of the route's body and query schemas."""
        if self.meta is None:
            return set()
        return {
            f.data_key or name
            for schema in (self.meta.body, self.meta.query)
            if schema is not None
            for name, f in schema.fields.items()
        }

    @property
    def streams(self) -> bool:
        """Answers with an endless event stream: read its headers, never its body."""
        return self.meta is not None and self.meta.response_content_type == "text/event-stream"

    @property
    def keyed(self) -> bool:
        """Authenticated by an api_key parameter (Open311) rather than a bearer token."""
        return API_KEY_FIELD in self.input_names

    @property
    def denied_roles(self) -> list[str]:
        """Roles the route's coarse rule refuses (none when any signed-in caller may use it)."""
        if self.meta is None or self.meta.roles is None:
            return []
        return [r for r in ALL_ROLES if r not in self.meta.roles]

    @property
    def allowed_roles(self) -> list[str]:
        if self.meta is None:
            return []
        return [r for r in ALL_ROLES if self.meta.roles is None or r in self.meta.roles]


async def read_answer(resp: Any, route: Route) -> Any:
    """The JSON body of an answer (None for other content); a stream is closed after its headers."""
    if route.streams and resp.status == 200:
        resp.close()
        return None
    if resp.content_type.endswith("json"):
        return await resp.json()
    await resp.read()
    return None


def all_routes(app: web.Application) -> list[Route]:
    """Every route of the app except HEAD twins of GETs, with its metadata (None when missing)."""
    out = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        methods = ("GET", "POST", "PUT", "PATCH", "DELETE") if route.method == "*" else (route.method,)
        for method in methods:
            out.append(Route(method, route.resource.canonical, endpoint_of(route.handler)))
    return sorted(out, key=lambda r: (r.path, r.method))


def protected_routes(app: web.Application) -> list[Route]:
    return [r for r in all_routes(app) if r.meta is not None and not r.meta.public]


def best_role(route: Route) -> str:
    """The widest-seeing role allowed on a route: admin, else an all-scope client, else the first."""
    allowed = route.allowed_roles
    for role in ("admin", "client", "supervisor"):
        if role in allowed:
            return role
    return allowed[0]
