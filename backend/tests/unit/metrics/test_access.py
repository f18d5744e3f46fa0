"""Who may read /metrics: a metrics, viewer or admin token, sent as Prometheus sends it (bearer);
and a metrics token reads nothing else, on every route the app has."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount

from ispbx.app import create_app
from ispbx.security.tokens import TokenStore
from ispbx.settings import SettingsError, load_settings
from tests.unit.metrics.rig import ADMIN, METRICS, TOKENS, VIEWER

# Routes anyone may read: a metrics token must get exactly what no token gets there.
PUBLIC = {"/", "/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/ui"}
PUBLIC_MOUNTS = {"/static-offline-docs", "/ui"}
PARAM = re.compile(r"\{(\w+)(:path)?\}")


def quiet_settings(tmp_path: Path, **env: str) -> dict[str, str]:
    """No Asterisk behind it (the port refuses): enough for authentication."""
    return {
        "ISPBX_AMI_PORT": "9",
        "ISPBX_PJSIP_CONF": str(tmp_path / "pjsip.conf"),
        "ISPBX_API_TOKENS": TOKENS,
        "ISPBX_TOKEN_FILE": str(tmp_path / "token"),
        "ISPBX_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ispbx.db'}",
        **env,
    }


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    (tmp_path / "pjsip.conf").write_text("")
    app = create_app(load_settings(quiet_settings(tmp_path)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield app, http


def flatten(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            yield from flatten(included.routes)
        else:
            yield route


def concrete(path: str) -> str:
    return PARAM.sub(lambda m: "a/b" if m.group(2) else "101", path)


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route, included routers and hidden routes too."""
    found: list[tuple[str, str]] = []
    for route in flatten(app.router.routes):
        path = getattr(route, "path", "")
        if isinstance(route, Mount):
            found.append(("GET", path))
            continue
        found.extend((method, path) for method in sorted(getattr(route, "methods", None) or []))
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented <= set(found), documented - set(found)  # the walk missed nothing
    return found


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_metrics_token_is_refused_on_every_other_route(
    client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = client
    routes = every_route(app)
    assert ("GET", "/endpoints/{extension}") in routes
    assert ("GET", "/endpoints/{rest:path}") in routes  # the hidden catch-all too
    checked = 0
    for method, template in routes:
        if template == "/metrics":
            continue
        path = concrete(template)
        with_token = await http.request(method, path, headers=bearer(METRICS))
        if template in PUBLIC or template in PUBLIC_MOUNTS:
            anonymous = await http.request(method, path)
            assert with_token.status_code == anonymous.status_code, path
            continue
        assert with_token.status_code == 403, (method, path, with_token.status_code)
        assert with_token.json() == {"detail": "This token may only read /metrics"}
        checked += 1
    assert checked >= 4  # /endpoints, /endpoints/{extension}, …/config, the catch-all, /events


async def test_a_metrics_token_in_the_event_streams_query_is_refused_too(
    client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _app, http = client
    response = await http.get("/events", params={"token": METRICS})
    assert response.status_code == 403


@pytest.mark.parametrize("token", [METRICS, VIEWER, ADMIN], ids=["metrics", "viewer", "admin"])
async def test_metrics_reads_with_any_role(
    client: tuple[FastAPI, httpx.AsyncClient], token: str
) -> None:
    _app, http = client
    response = await http.get("/metrics", headers=bearer(token))
    assert response.status_code == 200
    assert "ispbx_ami_up" in response.text


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("not-a-known-token"), {"Authorization": f"Basic {METRICS}"}],
    ids=["none", "unknown", "not-bearer"],
)
async def test_metrics_without_a_valid_bearer_token_is_401(
    client: tuple[FastAPI, httpx.AsyncClient], headers: dict[str, str]
) -> None:
    _app, http = client
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "ispbx_" not in response.text


async def test_metrics_token_in_the_query_is_not_accepted(
    client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _app, http = client
    assert (await http.get("/metrics", params={"token": METRICS})).status_code == 401


async def test_with_auth_off_metrics_is_open_like_every_route(tmp_path: Path) -> None:
    (tmp_path / "pjsip.conf").write_text("")
    app = create_app(load_settings(quiet_settings(tmp_path, ISPBX_AUTH="off")))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            assert (await http.get("/metrics")).status_code == 200


def test_metrics_tokens_are_accepted_in_the_settings() -> None:
    settings = load_settings({"ISPBX_API_TOKENS": f"metrics:{METRICS},admin:{ADMIN}"})
    assert settings.tokens == [("metrics", METRICS), ("admin", ADMIN)]
    store = TokenStore(settings.tokens)
    assert store.role_of(METRICS) == "metrics"
    assert store.role_of(ADMIN) == "admin"


@pytest.mark.parametrize("entry", ["metrics:short", "prometheus:long-enough-token", "metrics"])
def test_bad_token_entries_name_every_role(entry: str) -> None:
    with pytest.raises(SettingsError, match=r"^ISPBX_API_TOKENS: .*'metrics:TOKEN'") as error:
        load_settings({"ISPBX_API_TOKENS": entry})
    assert "long-enough-token" not in str(error.value)


def test_openapi_documents_metrics_as_secured(tmp_path: Path) -> None:
    (tmp_path / "pjsip.conf").write_text("")
    app = create_app(load_settings(quiet_settings(tmp_path)))
    operation: dict[str, Any] = app.openapi()["paths"]["/metrics"]["get"]
    assert operation["security"] == [{"BearerToken": []}]
