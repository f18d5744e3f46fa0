"""A client generated from /openapi.json works against the running service (issue 10, item 5).

openapi-python-client (the dev extra) reads the schema from a local file and is run without a
network (``unshare -n`` where the test may create a network namespace), so generating needs none.
The generated package is imported and used: the list, one endpoint, its config, a 304 with
If-None-Match, a typed 404 and a typed 401.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ispbx_lab.lab import free_port
from tests.support import ADMIN_TOKEN, ServiceProcess

PACKAGE = "ispbx_api_client"
OPERATIONS = {
    ("/", "get_root"),
    ("/health", "get_health"),
    ("/endpoints", "list_endpoints"),
    ("/endpoints/{extension}", "get_endpoint"),
    ("/endpoints/{extension}/config", "get_endpoint_config"),
    ("/events", "stream_events"),
    ("/me", "get_me"),
    ("/config/options", "get_config_options"),
    ("/endpoints", "create_endpoint"),
    ("/endpoints/import", "import_endpoints"),
    ("/endpoints/{extension}", "update_endpoint"),
    ("/endpoints/{extension}", "delete_endpoint"),
    ("/endpoints/{extension}/history", "get_endpoint_history"),
    ("/endpoints/{extension}/availability", "get_endpoint_availability"),
    ("/history", "get_history"),
    ("/audit", "get_audit"),
    ("/config/versions", "list_config_versions"),
    ("/config/versions/{version_id}", "get_config_version"),
    ("/config/versions/{version_id}/revert", "revert_config_version"),
    ("/metrics", "get_metrics"),
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """No Asterisk behind it: the sample pjsip.conf's 101 to 104 answer from the file."""
    log = tmp_path_factory.mktemp("openapi") / "service.log"
    process = ServiceProcess({"ISPBX_AMI_PORT": str(free_port())}, log).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def schema(service: ServiceProcess) -> dict[str, Any]:
    body: dict[str, Any] = service.get("/openapi.json", token=None).json()
    return body


def offline() -> list[str]:
    """A command prefix that runs without any network, where this process may make one."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "-n"]
    return []


@pytest.fixture(scope="module")
def client_package(
    schema: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    work = tmp_path_factory.mktemp("client")
    (work / "openapi.json").write_text(json.dumps(schema))
    # no formatter run on the output; an import's CSV / JSON-lines body is bytes to a client
    (work / "config.yml").write_text(
        "post_hooks: []\ncontent_type_overrides:\n"
        "  text/csv: application/octet-stream\n"
        "  application/x-ndjson: application/octet-stream\n"
    )
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            *offline(),
            str(generator),
            "generate",
            "--path",
            "openapi.json",
            "--meta",
            "none",
            "--config",
            "config.yml",
            "--output-path",
            PACKAGE,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def api(package: ModuleType, module: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{module}")


def test_operation_ids_are_the_route_names(schema: dict[str, Any]) -> None:
    found = {
        (path, operation["operationId"])
        for path, methods in schema["paths"].items()
        for operation in methods.values()
    }
    assert found == OPERATIONS


def test_the_schema_declares_304_sse_and_the_errors(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    listing = paths["/endpoints"]["get"]
    assert "304" in listing["responses"]
    assert any(p["name"] == "if-none-match" and p["in"] == "header" for p in listing["parameters"])
    stream = paths["/events"]["get"]["responses"]
    assert "text/event-stream" in stream["200"]["content"]
    assert "application/json" not in stream["200"]["content"]
    for kind in ("endpoint", "removed", "status", "reset"):
        assert f"`{kind}`" in stream["200"]["description"], kind
    assert "503" in stream
    for path in (
        "/endpoints",
        "/endpoints/{extension}",
        "/endpoints/{extension}/config",
        "/events",
    ):
        assert "401" in paths[path]["get"]["responses"], path
    for path in ("/endpoints/{extension}", "/endpoints/{extension}/config"):
        assert "404" in paths[path]["get"]["responses"], path
    assert "500" in paths["/endpoints/{extension}/config"]["get"]["responses"]


def test_the_generated_client_lists_reads_and_revalidates(
    service: ServiceProcess, client_package: ModuleType
) -> None:
    package = client_package
    client = package.AuthenticatedClient(base_url=service.base_url, token=ADMIN_TOKEN)
    listing = api(package, "endpoints.list_endpoints")
    first = listing.sync_detailed(client=client)
    assert first.status_code == 200
    body = first.parsed
    assert type(body).__name__ == "EndpointList"
    assert [row.extension for row in body.endpoints] == ["101", "102", "103", "104"]
    assert body.ami_connected is False and body.synced is False and body.stale_since is None

    etag = first.headers["etag"]
    again = listing.sync_detailed(client=client, if_none_match=etag)
    assert again.status_code == 304
    assert again.content == b""

    endpoint = api(package, "endpoints.get_endpoint").sync(client=client, extension="101")
    assert type(endpoint).__name__ == "Endpoint"
    assert endpoint.extension == "101"
    assert endpoint.details.endpoint["callerid"] == '"user101" <101>'

    config = api(package, "endpoints.get_endpoint_config").sync(client=client, extension="101")
    assert type(config).__name__ == "EndpointConfig"
    assert config.config["context"] == "from-internal"


def test_the_generated_client_gets_typed_errors(
    service: ServiceProcess, client_package: ModuleType
) -> None:
    package = client_package
    client = package.AuthenticatedClient(base_url=service.base_url, token=ADMIN_TOKEN)
    missing = api(package, "endpoints.get_endpoint").sync_detailed(client=client, extension="999")
    assert missing.status_code == 404
    assert type(missing.parsed).__name__ == "ErrorDetail"
    assert missing.parsed.detail == "Extension not found"

    stranger = package.AuthenticatedClient(base_url=service.base_url, token="not-a-known-token")
    refused = api(package, "endpoints.get_endpoint_config").sync_detailed(
        client=stranger, extension="101"
    )
    assert refused.status_code == 401
    assert type(refused.parsed).__name__ == "ErrorDetail"

    health = api(package, "service.get_health").sync(client=package.Client(service.base_url))
    assert type(health).__name__ == "Health"
    assert health.ami.connected is False
