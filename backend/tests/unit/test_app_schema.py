"""The app builds and documents every route (a model that cannot be evaluated fails here, not at
the first start on a PBX)."""

from __future__ import annotations

from ispbx.app import create_app
from ispbx.settings import load_settings


def test_every_route_is_in_the_openapi_schema() -> None:
    schema = create_app(load_settings({})).openapi()
    paths = schema["paths"]
    for path, methods in {
        "/endpoints": {"get", "post"},
        "/endpoints/{extension}": {"get", "patch", "delete"},
        "/endpoints/import": {"post"},
        "/endpoints/{extension}/history": {"get"},
        "/config/versions/{version_id}/revert": {"post"},
        "/config/options": {"get"},
        "/me": {"get"},
        "/audit": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
