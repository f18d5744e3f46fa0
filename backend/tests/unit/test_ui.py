"""The dashboard's directory: served when it holds a dashboard, a warning at start when not."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ispbx.api.ui import mount_ui
from ispbx.resources import bundled_frontend


def test_the_package_ships_the_dashboard() -> None:
    assert (bundled_frontend() / "index.html").is_file()
    assert (bundled_frontend() / "app.js").is_file()


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.get(path)


async def test_a_directory_without_a_dashboard_is_a_warning_not_a_silent_skip(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI()
    with caplog.at_level(logging.WARNING, logger="ispbx.api.ui"):
        assert mount_ui(app, tmp_path) is False
    assert str(tmp_path) in caplog.text
    assert (await get(app, "/ui/")).status_code == 404


async def test_the_bundled_dashboard_is_served() -> None:
    app = FastAPI()
    assert mount_ui(app, bundled_frontend()) is True
    response = await get(app, "/ui/")
    assert response.status_code == 200
    assert "<html" in response.text.lower()
