"""The REST routes under ``/services/data/v{NN.N}/``, and how requests are labelled for counting.

Matching runs on the raw (still percent-encoded) path so that an encoded ``/`` inside an external
Id value cannot split a segment; captured groups are decoded afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from sandbox.salesforce.schema import SCHEMA

VERSIONED = re.compile(r"^/services/data/v(?P<version>\d+\.\d+)(?:/(?P<rest>.*))?$")


@dataclass(frozen=True)
class ApiRoute:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    handler: str  # the name of a SalesforceApi method
    label: str  # the endpoint name ``GET /_sandbox/calls`` counts under

    def match(self, rest: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(rest)
        return {k: unquote(v) for k, v in found.groupdict().items()} if found else None


def _route(pattern: str, methods: str, handler: str, label: str) -> ApiRoute:
    return ApiRoute(re.compile(pattern), frozenset(methods.split()), handler, label)


API_ROUTES = (
    _route(r"", "GET", "resources", "resources"),
    _route(r"query/?", "GET", "query", "query"),
    _route(r"query/(?P<locator>[^/]+)/?", "GET", "query_more", "query"),
    _route(r"queryAll/?", "GET", "query_all", "queryAll"),
    _route(r"queryAll/(?P<locator>[^/]+)/?", "GET", "query_more", "queryAll"),
    _route(r"sobjects/?", "GET", "describe_global", "describe"),
    _route(r"sobjects/(?P<sobject>\w+)/?", "GET POST", "sobject", "sobjects/{sobject}"),
    _route(r"sobjects/(?P<sobject>\w+)/describe/?", "GET", "describe", "describe/{sobject}"),
    _route(
        r"sobjects/(?P<sobject>\w+)/(?P<record_id>[^/]+)/?",
        "GET PATCH DELETE",
        "record",
        "sobjects/{sobject}",
    ),
    _route(  # a blob field's bytes (sandbox/salesforce/content.py)
        r"sobjects/(?P<sobject>\w+)/(?P<record_id>[^/]+)/(?P<field>VersionData)/?",
        "GET",
        "blob",
        "sobjects/{sobject}/VersionData",
    ),
    _route(
        r"sobjects/(?P<sobject>\w+)/(?P<field>\w+)/(?P<value>[^/]+)/?",
        "GET PATCH",
        "external",
        "sobjects/{sobject}",
    ),
    _route(r"composite/sobjects/?", "POST PATCH DELETE", "collection", "composite/sobjects"),
    _route(
        r"composite/sobjects/(?P<sobject>\w+)/?",
        "GET POST",
        "collection_retrieve",
        "composite/sobjects",
    ),
    _route(r"limits/?", "GET", "limits", "limits"),
)


def resolve(method: str, rest: str) -> tuple[ApiRoute, dict[str, str]] | None:
    for route in API_ROUTES:
        groups = route.match(rest)
        if groups is not None and method in route.methods:
            return route, groups
    return None


def allowed_methods(rest: str) -> list[str]:
    """Methods some route answers at this path (empty: no such resource)."""
    methods: set[str] = set()
    for route in API_ROUTES:
        if route.match(rest) is not None:
            methods |= route.methods
    return sorted(methods)


def classify(method: str, path: str) -> str:
    """The endpoint label of a request path (``query``, ``sobjects/Opportunity``, ...)."""
    if path.startswith("/services/oauth2/"):
        return "oauth2/" + path.removeprefix("/services/oauth2/").strip("/")
    if path.startswith("/services/Soap/u/"):
        return "soap/login"
    if path.rstrip("/") == "/services/data":
        return "versions"
    found = VERSIONED.match(path)
    if found is None:
        return "unknown"
    hit = resolve(method, found.group("rest") or "")
    if hit is None:
        return "unknown"
    route, groups = hit
    sobject = groups.get("sobject", "")
    known = SCHEMA.get(sobject)
    return route.label.format(sobject=known.name if known else sobject)
