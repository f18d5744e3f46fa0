"""Leaks found by a viewer and in the log, and changes that are not changes (issue 10, item 3).

- ``set_var`` values: viewers see the variables' names, admins the values, in /config,
  /endpoints/{ext} (when pjsip_detail.ini selects SetVar) and /events;
- ``/events?%74oken=…`` authenticates, and the token must not reach the access log;
- trailing-slash (and directory) redirects must not echo the Host header;
- a generated token file that others may read, or with a short token, stops the start;
- ``stale_since`` is null (``synced: false``) when Asterisk was never reached;
- a resync (reload or re-login) publishes no ``endpoint`` event for an unchanged registration.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ispbx.settings import BUNDLED_DETAIL_INI, SAMPLE_PJSIP_CONF
from ispbx_lab.lab import Lab, free_port
from ispbx_lab.sipphone import register_blocking, unregister_blocking
from tests.integration.conftest import running_lab
from tests.support import ADMIN_TOKEN, BACKEND, VIEWER_TOKEN, ServiceProcess, wait_for

pytestmark = pytest.mark.integration
MASK = "********"
SECRET_101 = "set-var-secret-4417"  # lab values
SECRET_105 = "set-var-secret-5523"
SET_VARS = f"set_var = API_PASSWORD={SECRET_101}\nset_var = REGION=eu-west\n"
PJSIP_CONF = (
    SAMPLE_PJSIP_CONF.read_text().replace(
        'callerid = "user101" <101>\n', f'callerid = "user101" <101>\n{SET_VARS}'
    )
    + "\n; only the file knows it: Asterisk refuses an endpoint with an unknown option\n"
    f"[105](endpoint-basic)\nnot_an_option = 1\nset_var = TOKEN_105={SECRET_105}\n"
)
DETAIL_INI = (
    BUNDLED_DETAIL_INI.read_text()
    .replace("DeviceState, Transport, Aor, Auths", "DeviceState, Transport, Aor, Auths, SetVar")
    .replace("Context, Callerid", "Context, Callerid, SetVar")
)


def quiet_service(tmp_path: Path, **env: str) -> ServiceProcess:
    """A service with no Asterisk behind it."""
    return ServiceProcess({"ISPBX_AMI_PORT": str(free_port()), **env}, tmp_path / "service.log")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- set_var ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def setvar_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("setvar", {"pjsip.conf": PJSIP_CONF})


@pytest.fixture(scope="module")
def service(setvar_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    home = tmp_path_factory.mktemp("leaks")
    (home / "pjsip_detail.ini").write_text(DETAIL_INI)
    env = {**setvar_lab.service_env(), "ISPBX_DETAIL_INI": str(home / "pjsip_detail.ini")}
    process = ServiceProcess(env, home / "service.log").start()
    try:
        wait_for(
            lambda: process.get("/health").json()["inventory"]["prefetch_seconds"] is not None,
            30,
            "the detail prefetch",
        )
        yield process
    finally:
        process.stop()


def test_viewers_see_set_var_names_and_admins_the_values(service: ServiceProcess) -> None:
    viewer = service.get("/endpoints/101/config", token=VIEWER_TOKEN).json()["config"]
    admin = service.get("/endpoints/101/config", token=ADMIN_TOKEN).json()["config"]
    assert viewer["set_var"] == f"API_PASSWORD={MASK},REGION={MASK}"
    assert admin["set_var"] == f"API_PASSWORD={SECRET_101},REGION=eu-west"

    viewer_ami = service.get("/endpoints/101", token=VIEWER_TOKEN).json()["details"]["endpoint"]
    admin_ami = service.get("/endpoints/101", token=ADMIN_TOKEN).json()["details"]["endpoint"]
    assert SECRET_101 in admin_ami["setvar"]  # Asterisk's own SetVar, as AMI shows it
    assert viewer_ami["setvar"] == f"API_PASSWORD={MASK},REGION={MASK}"

    for path in ("/endpoints", "/endpoints?q=10", "/endpoints/105", "/endpoints/105/config"):
        text = service.get(path, token=VIEWER_TOKEN).text
        assert SECRET_101 not in text and SECRET_105 not in text, path
        assert "TOKEN_105" in service.get("/endpoints/105/config", token=VIEWER_TOKEN).text


def collect(url: str, token: str, into: list[str], stop: threading.Event) -> None:
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", url, headers=bearer(token)) as response,
    ):
        for chunk in response.iter_text():
            into.append(chunk)
            if stop.is_set():
                return


@contextlib.contextmanager
def listening(service: ServiceProcess, token: str) -> Iterator[list[str]]:
    """The text of an /events stream for the block (it ends at the next event after it)."""
    chunks: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=collect, args=(f"{service.base_url}/events", token, chunks, stop), daemon=True
    )
    thread.start()
    wait_for(lambda: chunks, 5, "the stream to open")
    try:
        yield chunks
    finally:
        stop.set()


def endpoint_events(text: str, extension: str) -> list[dict[str, Any]]:
    rows = [json.loads(data) for data in re.findall(r"event: endpoint\ndata: (.*)\n", text)]
    return [row for row in rows if row["extension"] == extension]


def test_event_stream_shows_viewers_set_var_names_only(
    setvar_lab: Lab, service: ServiceProcess
) -> None:
    """105 is only in pjsip.conf, so its row's [EndpointList] fields (SetVar selected) come from
    the file; an edit of its set_var value publishes the row."""
    with listening(service, VIEWER_TOKEN) as viewer, listening(service, ADMIN_TOKEN) as admin:
        time.sleep(1.05)  # a new mtime second
        setvar_lab.write_pjsip({"pjsip.conf": PJSIP_CONF.replace(SECRET_105, SECRET_105 + "x")})
        wait_for(lambda: endpoint_events("".join(admin), "105"), 5, "105's row on /events")
        wait_for(lambda: endpoint_events("".join(viewer), "105"), 5, "105's row for the viewer")
    setvar_lab.write_pjsip({"pjsip.conf": PJSIP_CONF})
    seen = endpoint_events("".join(viewer), "105")[-1]
    assert seen["details"]["setvar"] == f"TOKEN_105={MASK}"
    assert SECRET_105 not in "".join(viewer)
    assert endpoint_events("".join(admin), "105")[-1]["details"]["setvar"] == (
        f"TOKEN_105={SECRET_105}x"
    )


# -- a resync changes nothing that did not change --------------------------------------------------


def test_a_resync_sends_no_event_for_an_unchanged_registration(
    setvar_lab: Lab, service: ServiceProcess
) -> None:
    """Today each resync sent two ``endpoint`` events per registered endpoint: ContactList lacks
    RegExpire and ViaAddress until the detail prefetch puts them back (a reload's targeted
    refresh never put them back at all)."""
    port = free_port(socket.SOCK_DGRAM)
    registrar = ("127.0.0.1", setvar_lab.sip_port)
    register_blocking("102", "102pass", registrar=registrar, local_port=port, expires=300)
    try:
        row = wait_for(
            lambda: next(
                (
                    e
                    for e in service.get("/endpoints").json()["endpoints"]
                    if e["extension"] == "102" and e["contacts"] and e["contacts"][0]["regexpire"]
                ),
                None,
            ),
            5,
            "102's contact with its expiry",
        )
        with listening(service, ADMIN_TOKEN) as admin:
            time.sleep(0.3)
            setvar_lab.reload_pjsip()  # a targeted resync
            time.sleep(2.0)
            after_reload = endpoint_events("".join(admin), "102")
            setvar_lab.pause()  # a full resync: the session drops and logs in again
            wait_for(lambda: not service.get("/health").json()["ami"]["connected"], 6, "AMI down")
            setvar_lab.resume()
            wait_for(
                lambda: service.get("/health").json()["inventory"]["prefetch_seconds"],
                30,
                "the prefetch after the re-login",
            )
            time.sleep(1.0)
            text = "".join(admin)
        after_login = endpoint_events(text, "102")
        final = next(
            e for e in service.get("/endpoints").json()["endpoints"] if e["extension"] == "102"
        )
    finally:
        setvar_lab.resume()
        unregister_blocking("102", "102pass", registrar=registrar, local_port=port)
    assert "event: status" in text  # the stream did see the outage
    assert after_reload == [], after_reload
    assert after_login == [], after_login
    assert final["contacts"] == row["contacts"]


# -- the token in the query string ---------------------------------------------------------------


def test_an_encoded_token_parameter_is_not_logged(tmp_path: Path) -> None:
    service = quiet_service(tmp_path).start()
    try:
        url = f"{service.base_url}/events?%74oken={VIEWER_TOKEN}&q=1"
        with httpx.stream("GET", url, timeout=5) as stream:
            assert stream.status_code == 200  # it does authenticate
    finally:
        service.stop()
    log = service.log()
    assert "/events?%74oken=" in log
    assert VIEWER_TOKEN not in log


# -- redirects -------------------------------------------------------------------------------------


def raw_get(service: ServiceProcess, target: str, host: str) -> tuple[int, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), headers


@pytest.mark.parametrize("target", ["/health/", "/docs/", "/openapi.json/", "/ui", "/ui/"])
def test_no_redirect_echoes_the_host_header(tmp_path: Path, target: str) -> None:
    service = quiet_service(tmp_path).start()
    try:
        status, headers = raw_get(service, target, "evil.example")
    finally:
        service.stop()
    assert "evil.example" not in json.dumps(headers)
    location = headers.get("location")
    assert location is None or location.startswith("/"), location
    if target == "/ui":
        assert (status, location) == (307, "/ui/")


# -- the generated token file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "mode", "says"),
    [
        ("a-long-enough-generated-token\n", 0o644, "may be read or written by group or others"),
        ("q7#z\n", 0o600, "shorter than 8 characters"),
    ],
)
def test_a_bad_token_file_stops_the_start_with_one_line(
    tmp_path: Path, content: str, mode: int, says: str
) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(content)
    token_file.chmod(mode)
    env = {
        "PATH": "/usr/bin:/bin",
        "ISPBX_AMI_PORT": str(free_port()),
        "ISPBX_HTTP_PORT": str(free_port()),
        "ISPBX_TOKEN_FILE": str(token_file),
    }
    result = subprocess.run(
        [sys.executable, "src/main.py"],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"ispbx: ISPBX_TOKEN_FILE {token_file} ")
    assert says in result.stderr
    assert content.strip() not in result.stderr


# -- never synced ----------------------------------------------------------------------------------


def test_never_reached_asterisk_is_not_stale_but_never_synced(tmp_path: Path) -> None:
    service = quiet_service(tmp_path).start()
    try:
        time.sleep(1.0)  # several connection attempts
        listed = service.get("/endpoints").json()
        detail = service.get("/endpoints/101").json()
        health = service.get("/health").json()
        with httpx.stream(
            "GET", f"{service.base_url}/events", headers=bearer(ADMIN_TOKEN), timeout=5
        ) as stream:
            assert stream.status_code == 200
    finally:
        service.stop()
    for body in (listed, detail):
        assert body["ami_connected"] is False
        assert body["synced"] is False
        assert body["stale_since"] is None  # no last known state to be stale
    assert health["inventory"]["synced"] is False
    assert health["ami"]["connected"] is False
