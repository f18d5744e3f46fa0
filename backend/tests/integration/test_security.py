"""Security acceptance (issue 5): tokens, roles, redaction, hostile input, browser headers.

One lab with the sample pjsip.conf plus a trunk with outbound auths (userpass and md5) and a
config-only endpoint that carries every secret option, so every place a secret can show is covered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from ispbx.ami import AmiActionError, AmiClient, AmiValueError
from ispbx.api.dependencies import extension_param
from ispbx.api.errors import ExtensionNotFound
from ispbx.api.ui import mount_ui
from ispbx.settings import SAMPLE_PJSIP_CONF
from ispbx_lab.lab import AMI_SECRET, AMI_USERNAME, Lab, free_port
from ispbx_lab.sipphone import SipPhone
from tests.integration.conftest import running_lab
from tests.support import ADMIN_TOKEN, BACKEND, VIEWER_TOKEN, ServiceProcess, wait_for

pytestmark = pytest.mark.integration

MASK = "********"
NOT_FOUND = {"detail": "Extension not found"}
TRUNK_PASSWORD = "trunk-pass-7731"  # lab credentials below: demo values
TRUNK_MD5 = hashlib.md5(b"trunkuser:asterisk:trunk-md5-pass-4410").hexdigest()
ENDPOINT_SECRETS = {
    "password": "ep105-password-8812",
    "md5_cred": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "oauth_secret": "ep105-oauth-secret-5521",
    "refresh_token": "ep105-refresh-token-9917",
    "password_digest": "ep105-password-digest-3301",
}
EXTRA_PJSIP = f"""
;--------------------------------------------------------------------------- security test
[trunk-auth]
type = auth
auth_type = userpass
username = trunkuser
password = {TRUNK_PASSWORD}

[trunk-md5]
type = auth
auth_type = md5
username = trunkuser
realm = asterisk
md5_cred = {TRUNK_MD5}

[trunk]
type = endpoint
transport = transport-udp
context = from-internal
disallow = all
allow = ulaw
outbound_auth = trunk-auth,trunk-md5
aors = trunk

[trunk]
type = aor
contact = sip:trunkuser@127.0.0.1:5999

; Not loaded by Asterisk (an endpoint has no such options): only the file knows it.
[105](endpoint-basic)
callerid = "Secret Keeper" <105>
""" + "".join(f"{option} = {value}\n" for option, value in ENDPOINT_SECRETS.items())
PJSIP_CONF = SAMPLE_PJSIP_CONF.read_text() + EXTRA_PJSIP
SECRETS = [
    *(f"{n}pass" for n in range(101, 105)),
    TRUNK_PASSWORD,
    TRUNK_MD5,
    *ENDPOINT_SECRETS.values(),
    AMI_SECRET,
]
EXTENSIONS = ["101", "102", "103", "104", "105", "trunk"]


@pytest.fixture(scope="module")
def sec_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("security", {"pjsip.conf": PJSIP_CONF})


@pytest.fixture(scope="module")
def service(sec_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("security") / "service.log"
    process = ServiceProcess(sec_lab.service_env(), log).start()
    try:
        wait_for(lambda: process.get("/health").json()["inventory"]["synced"], 15, "first sync")
        wait_for(
            lambda: process.get("/endpoints/101").json()["details"]["auth"]["password"],
            10,
            "the details of 101",
        )
        yield process
    finally:
        process.stop()


def quiet_service(tmp_path: Path, **env: str) -> ServiceProcess:
    """A service with no Asterisk behind it: enough for auth, logs and headers."""
    return ServiceProcess({"ISPBX_AMI_PORT": str(free_port()), **env}, tmp_path / "service.log")


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


# -- 1: bearer tokens ------------------------------------------------------------------------------

PROTECTED = [
    "/endpoints",
    "/endpoints?status=online",
    "/endpoints?q=10",
    "/endpoints/101",
    "/endpoints/101/config",
    "/endpoints/nope",
    "/endpoints/a/b/c",
    "/events",
]
WRONG_AUTH: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer wrong-token-0000000"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
    {"Authorization": "Bearer"},
    {"Authorization": f"Basic {ADMIN_TOKEN}"},
    {"Authorization": ADMIN_TOKEN},
    {"X-Api-Token": ADMIN_TOKEN},
]


@pytest.mark.parametrize("path", PROTECTED)
def test_protected_routes_need_a_known_token(service: ServiceProcess, path: str) -> None:
    for headers in WRONG_AUTH:
        response = service.get(path, token=None, headers=headers)
        assert response.status_code == 401, (path, headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "Not authenticated"}
    for token in (ADMIN_TOKEN, VIEWER_TOKEN):
        if path == "/events":
            with httpx.stream(
                "GET", service.base_url + path, headers={"Authorization": f"Bearer {token}"}
            ) as stream:
                assert stream.status_code == 200
        else:
            assert service.get(path, token=token).status_code in (200, 404)


def test_query_token_only_works_for_the_event_stream(service: ServiceProcess) -> None:
    for path in ("/endpoints", "/endpoints/101", "/endpoints/101/config"):
        response = service.get(path, token=None, params={"token": ADMIN_TOKEN})
        assert response.status_code == 401, path
    assert service.get("/events", token=None, params={"token": "wrong-token-0000"}).status_code == (
        401
    )
    url = f"{service.base_url}/events?token={VIEWER_TOKEN}"
    with httpx.stream("GET", url, timeout=5) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize("path", ["/", "/health", "/docs", "/openapi.json"])
def test_public_routes_need_no_token(service: ServiceProcess, path: str) -> None:
    assert service.get(path, token=None).status_code == 200


def test_openapi_documents_the_bearer_scheme(service: ServiceProcess) -> None:
    schema = service.get("/openapi.json", token=None).json()
    schemes = schema["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s == {**s, "type": "http", "scheme": "bearer"}]
    assert bearer, schemes
    for path in (
        "/endpoints",
        "/endpoints/{extension}",
        "/endpoints/{extension}/config",
        "/events",
    ):
        security = schema["paths"][path]["get"].get("security")
        assert security and any(bearer[0] in item for item in security), path
    for path in ("/", "/health"):
        assert not schema["paths"][path]["get"].get("security"), path


# -- 2: roles --------------------------------------------------------------------------------------


def details(service: ServiceProcess, extension: str, token: str) -> dict[str, Any]:
    response = service.get(f"/endpoints/{extension}", token=token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()["details"]
    return body


def test_admin_sees_passwords_as_pjsip_detail_ini_selects(service: ServiceProcess) -> None:
    auth = details(service, "101", ADMIN_TOKEN)
    assert auth["auth"]["password"] == "101pass"
    assert auth["auths"][0]["password"] == "101pass"
    trunk = wait_for(
        lambda: (d := details(service, "trunk", ADMIN_TOKEN))["outbound_auths"] and d,
        5,
        "the trunk's outbound auths",
    )
    assert trunk["outbound_auth"]["password"] == TRUNK_PASSWORD
    assert {a["objectname"] for a in trunk["outbound_auths"]} == {"trunk-auth", "trunk-md5"}
    config = service.get("/endpoints/105/config", token=ADMIN_TOKEN).json()["config"]
    assert {k: config[k] for k in ENDPOINT_SECRETS} == ENDPOINT_SECRETS
    assert details(service, "105", ADMIN_TOKEN)["endpoint"]["objectname"] == "105"


def test_viewer_sees_every_secret_masked(service: ServiceProcess) -> None:
    auth = details(service, "101", VIEWER_TOKEN)
    assert auth["auth"]["password"] == MASK
    assert auth["auth"]["username"] == "101"  # only secrets are hidden
    assert [a["password"] for a in auth["auths"]] == [MASK]
    trunk = details(service, "trunk", VIEWER_TOKEN)
    assert trunk["outbound_auth"]["password"] == MASK
    assert trunk["outbound_auths"] and all(
        a.get("password") in (MASK, None) for a in trunk["outbound_auths"]
    )
    config = service.get("/endpoints/105/config", token=VIEWER_TOKEN).json()["config"]
    assert {k: config[k] for k in ENDPOINT_SECRETS} == dict.fromkeys(ENDPOINT_SECRETS, MASK)
    assert config["callerid"] == '"Secret Keeper" <105>'
    admin_list = service.get("/endpoints", token=ADMIN_TOKEN)
    viewer_list = service.get("/endpoints", token=VIEWER_TOKEN)
    assert viewer_list.headers["etag"] != admin_list.headers["etag"] or (
        viewer_list.content == admin_list.content
    )


# -- 3: nothing leaks to a viewer ------------------------------------------------------------------


def viewer_paths(service: ServiceProcess) -> list[str]:
    names = [e["extension"] for e in service.get("/endpoints").json()["endpoints"]]
    assert set(EXTENSIONS) <= set(names)
    paths = ["/", "/health", "/openapi.json", "/docs", "/endpoints"]
    paths += ["/endpoints?q=1", "/endpoints?q=trunk", "/endpoints?status=offline"]
    for name in names:
        paths += [f"/endpoints/{quote(name, safe='')}", f"/endpoints/{quote(name, safe='')}/config"]
    return paths


def test_no_response_to_a_viewer_carries_a_known_secret(service: ServiceProcess) -> None:
    admin_bodies = ""
    for path in viewer_paths(service):
        response = service.get(path, token=VIEWER_TOKEN)
        assert response.status_code == 200, (path, response.text)
        assert not leaked(response.text), (path, leaked(response.text))
        gzipped = service.get(path, token=VIEWER_TOKEN, headers={"Accept-Encoding": "gzip"})
        assert not leaked(gzipped.text), path
        admin_bodies += service.get(path, token=ADMIN_TOKEN).text
    # The scan can fail: the admin's answers do carry the lab's passwords.
    assert {"101pass", TRUNK_PASSWORD, ENDPOINT_SECRETS["password"]} <= set(leaked(admin_bodies))


async def collect_events(url: str, token: str, until: re.Pattern[str], seconds: float) -> str:
    text = ""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=seconds + 5) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for chunk in response.aiter_text():
                    text += chunk
                    if until.search(text):
                        break
    return text


async def test_event_stream_to_a_viewer_carries_no_secret(
    sec_lab: Lab, service: ServiceProcess
) -> None:
    online = re.compile(r'event: endpoint\ndata: \{"extension":"101".*"status":"online"')
    listening = asyncio.create_task(
        collect_events(f"{service.base_url}/events", VIEWER_TOKEN, online, 6)
    )
    await asyncio.sleep(0.5)
    async with SipPhone("101", "101pass", registrar=("127.0.0.1", sec_lab.sip_port)) as phone:
        await phone.register(expires=60)
        text = await listening
        await phone.unregister()
    assert online.search(text), text[-2000:]
    assert not leaked(text), leaked(text)


def edit_and_check(
    lab: Lab, service: ServiceProcess, text: str, changed: str, baseline: Any
) -> httpx.Response:
    """Write ``text`` as pjsip.conf, wait until /health's config[changed] moves, scan a viewer's
    answers; returns /health."""
    time.sleep(1.05)  # a new mtime second
    lab.write_pjsip({"pjsip.conf": text})
    health: httpx.Response = wait_for(
        lambda: (
            (h := service.get("/health", token=None)).json()["config"][changed] != baseline and h
        ),
        5,
        f"config.{changed} of the edit",
    )
    assert not leaked(health.text), health.text
    for path in ("/endpoints", "/endpoints?q=1", "/endpoints/101", "/endpoints/101/config"):
        assert not leaked(service.get(path, token=VIEWER_TOKEN).text), path
    return health


def test_health_never_quotes_a_secret_from_a_broken_edit(
    sec_lab: Lab, service: ServiceProcess
) -> None:
    """A careless edit: a '#' comment (quoted back as an unknown directive), a line without '='
    (warnings), then a section line the parser quotes in its error."""
    warned = PJSIP_CONF.replace(
        "password = 101pass\n", "password = 101pass\n#password=101pass\npassword 101pass\n", 1
    )
    broken = PJSIP_CONF.replace("[102](auth-userpass)", "[102](auth-userpass,password=102pass)")
    assert PJSIP_CONF not in (warned, broken)
    before = service.get("/health").json()["config"]
    assert before["error"] is None
    try:
        health = edit_and_check(sec_lab, service, warned, "warnings", before["warnings"])
        assert len(health.json()["config"]["warnings"]) == len(before["warnings"]) + 2
        health = edit_and_check(sec_lab, service, broken, "error", None)
        assert "Inheritance requested" in health.json()["config"]["error"]
        envelope = service.get("/endpoints", token=VIEWER_TOKEN).json()
        assert "Inheritance requested" in envelope["config_error"]
    finally:
        time.sleep(1.05)
        sec_lab.write_pjsip({"pjsip.conf": PJSIP_CONF})
        wait_for(
            lambda: service.get("/health").json()["config"] == before,
            5,
            "the repaired pjsip.conf",
        )


# -- 4: hostile extensions -------------------------------------------------------------------------

MARKER = f"pwn-{uuid.uuid4().hex[:12]}"


def dbput(key: str, separator: str = "\r\n") -> str:
    return separator.join(["Action: DBPut", "Family: ispbx", f"Key: {key}", "Val: 1"])


HOSTILE: dict[str, str] = {
    "crlf-action": f"101\r\n{dbput(MARKER + '-1')}",
    "blank-line-action": f"101\r\n\r\n{dbput(MARKER + '-2')}",
    "lf-blank-line-action": f"101\n\n{dbput(MARKER + '-3', chr(10))}",
    "cr-only": f"101\r{dbput(MARKER + '-4', chr(13))}",
    "dot-dot": "../../etc/passwd",
    "encoded-dot-dot": "..%2F..%2Fetc%2Fpasswd",
    "dot-dot-alone": "..",
    "backslash": "..\\..\\etc\\passwd",
    "nul": "101\0",
    "nul-middle": "10\x001",
    "5000-chars": "1" * 5000,
    "81-chars": "1" * 81,
    "shell": "101;rm -rf /",
    "shell-subst": "$(touch /tmp/pwn)",
    "sql": "' OR 1=1 --",
    "script": "<script>alert(1)</script>",
    "script-no-slash": "<script>alert(1)<",
    "nbsp": "101\u00a0",
    "em-space": "\u2003101",
    "zero-width-space": "101\u200b",
    "line-separator": "101\u2028",
    "tab": "101\t",
    "space": "10 1",
    "del": "101\x7f",
    "escape": "\x1b[31m101",
}
INJECTED_KEYS = [f"{MARKER}-{n}" for n in range(1, 5)]


def encoded(segment: str) -> str:
    """Every byte that is not a letter or digit percent-encoded, dots included (so no client
    or proxy folds ``..``)."""
    return quote(segment, safe="").replace(".", "%2E")


async def db_get(lab: Lab, key: str) -> str | None:
    """The value of ``ispbx/key`` in the lab's astdb, via our own AMI session (user ispbx)."""
    client = AmiClient("127.0.0.1", lab.ami_port, AMI_USERNAME, AMI_SECRET)
    await client.connect()
    try:
        items = await client.list_action({"Action": "DBGet", "Family": "ispbx", "Key": key})
    except AmiActionError as exc:
        assert "not found" in str(exc).lower(), exc
        return None
    finally:
        await client.close()
    return items[0]["Val"] if items else None


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_extension_is_404_and_reaches_nothing(
    sec_lab: Lab, service: ServiceProcess, name: str
) -> None:
    for path in (f"/endpoints/{encoded(name)}", f"/endpoints/{encoded(name)}/config"):
        for token in (ADMIN_TOKEN, VIEWER_TOKEN):
            response = httpx.get(
                service.base_url + path,
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            assert response.status_code == 404, (path, response.text)
            assert response.json() == NOT_FOUND
            assert response.headers["content-type"] == "application/json"
        assert service.get(path, token=None).status_code == 401  # auth comes first
    assert service.get("/health").status_code == 200
    assert service.get("/endpoints/101").status_code == 200
    for key in INJECTED_KEYS:
        assert asyncio.run(db_get(sec_lab, key)) is None, key


# Plain names (no slash, space or control character): looked up like any name, then 404.
LOOKED_UP = {"encoded-dot-dot", "dot-dot-alone", "script-no-slash"}


async def test_hostile_names_are_refused_before_any_lookup() -> None:
    """The route-level check, so a lookup that learns to reach AMI still never sees these."""
    for label, name in HOSTILE.items():
        if label in LOOKED_UP:
            assert await extension_param(name) == name
            continue
        with pytest.raises(ExtensionNotFound):
            await extension_param(name)
    assert await extension_param("1" * 80) == "1" * 80


def raw_http(service: ServiceProcess, target: str) -> tuple[int, bytes]:
    """One request with ``target`` written as is (httpx would normalise ``..``)."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/endpoints/../../etc/passwd",
        "/endpoints/../../etc/passwd/config",
        "/endpoints/..",
        "/endpoints/../config",
        "/endpoints/%2e%2e/%2e%2e/etc/passwd",
        "/endpoints/101/../../../etc/passwd",
        "/endpoints//101",
    ],
)
def test_unnormalised_paths_under_endpoints_are_404(service: ServiceProcess, target: str) -> None:
    status, body = raw_http(service, target)
    assert status == 404, (target, body)
    assert json.loads(body) == NOT_FOUND
    assert b"root:" not in body


def test_hostile_last_event_id_is_ignored_not_a_crash(service: ServiceProcess) -> None:
    """Only ASCII digits are an event id; "²" passes str.isdigit() but not int()."""
    auth = f"Bearer {VIEWER_TOKEN}".encode()
    failed = []
    for value in [b"abc", b"-1", b"1e9", b"\xb2", b"\xb9\xb2", b"9" * 5000, b"1" * 30]:
        headers = {"Authorization": auth, "Last-Event-ID": value}
        with httpx.stream(
            "GET", f"{service.base_url}/events", headers=headers, timeout=5
        ) as stream:
            first = next(stream.iter_text()) if stream.status_code == 200 else ""
            if not first.startswith("retry: 2000"):
                failed.append((value[:20], stream.status_code))
    assert not failed
    assert service.get("/health").status_code == 200


def ami_raw(lab: Lab, payload: bytes) -> bytes:
    """Log in on a plain socket as the service's AMI user, write ``payload``, log off."""
    login = f"Action: Login\r\nUsername: {AMI_USERNAME}\r\nSecret: {AMI_SECRET}\r\n"
    with socket.create_connection(("127.0.0.1", lab.ami_port), timeout=5) as sock:
        sock.sendall(login.encode() + b"Events: off\r\n\r\n" + payload)
        time.sleep(0.3)
        sock.sendall(b"Action: Logoff\r\n\r\n")
        data = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                data += chunk
    return data


@pytest.mark.parametrize("kind", ["crlf", "lf"])
def test_the_injection_works_when_written_raw_but_not_through_the_wrapper(
    sec_lab: Lab, kind: str
) -> None:
    """Proves the hostile-extension test can fail: the user may DBPut, and the payload works."""
    key = f"{MARKER}-raw-{kind}"
    separator = "\r\n" if kind == "crlf" else "\n"
    name = f"101{separator}{separator}{dbput(key, separator)}"

    async def through_the_wrapper() -> None:
        client = AmiClient("127.0.0.1", sec_lab.ami_port, AMI_USERNAME, AMI_SECRET)
        await client.connect()
        try:
            with pytest.raises(AmiValueError):
                await client.list_action({"Action": "PJSIPShowEndpoint", "Endpoint": name})
            with pytest.raises(AmiValueError):
                await client.action({"Action": "PJSIPShowEndpoint", "Endpoint": name})
            await client.ping()
        finally:
            await client.close()

    asyncio.run(through_the_wrapper())
    assert asyncio.run(db_get(sec_lab, key)) is None

    # The bytes the wrapper would have written, had it not refused.
    wire = f"Action: PJSIPShowEndpoint\r\nEndpoint: {name}\r\nActionID: raw-1\r\n\r\n"
    reply = ami_raw(sec_lab, wire.encode())
    try:
        assert b"Updated database successfully" in reply, reply[-500:]
        assert asyncio.run(db_get(sec_lab, key)) == "1"
    finally:
        ami_raw(sec_lab, f"Action: DBDel\r\nFamily: ispbx\r\nKey: {key}\r\n\r\n".encode())
    assert asyncio.run(db_get(sec_lab, key)) is None


# -- 6: tokens never reach the log -----------------------------------------------------------------


def request_with_query_token(service: ServiceProcess, token: str) -> None:
    with httpx.stream("GET", f"{service.base_url}/events?token={token}", timeout=5) as stream:
        assert stream.status_code == 200
        next(stream.iter_text())
    response = service.get("/endpoints", token=token)
    assert response.status_code == 200
    assert service.get(f"/endpoints?q=1&token={token}", token=None).status_code == 401
    assert service.get(f"/events?token={token}x", token=None).status_code == 401


def masked_in_log(service: ServiceProcess) -> Callable[[], bool]:
    return lambda: "/events?token=********" in service.log()


def test_configured_tokens_never_appear_in_the_log(tmp_path: Path) -> None:
    service = quiet_service(tmp_path).start()
    try:
        request_with_query_token(service, ADMIN_TOKEN)
        request_with_query_token(service, VIEWER_TOKEN)
        wait_for(masked_in_log(service), 5, "the access log")
    finally:
        service.stop()
    log = service.log()
    assert ADMIN_TOKEN not in log
    assert VIEWER_TOKEN not in log


def test_generated_token_is_private_stable_and_logged_once_per_start(tmp_path: Path) -> None:
    token_file = tmp_path / "state" / "admin-token"
    env = {"ISPBX_API_TOKENS": "", "ISPBX_TOKEN_FILE": str(token_file)}
    tokens = []
    for start in (1, 2):
        service = quiet_service(tmp_path, **env).start()
        try:
            token = token_file.read_text().strip()
            tokens.append(token)
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            assert service.get("/endpoints", token=token).status_code == 200
            assert service.get("/endpoints", token=ADMIN_TOKEN).status_code == 401
            request_with_query_token(service, token)
            link = f"http://127.0.0.1:{service.port}/ui/#token={token}"
            wait_for(masked_in_log(service), 5, "the access log")
        finally:
            service.stop()
        log = service.log()
        assert link in log
        assert log.count(token) == start, log  # the start-up link, once per start
        assert not [line for line in log.splitlines() if token in line and "GET " in line]
    assert tokens[0] == tokens[1] and len(tokens[0]) >= 32


# -- 7: ISPBX_AUTH=off -----------------------------------------------------------------------------


def test_auth_off_on_loopback_opens_the_api_and_warns(tmp_path: Path) -> None:
    service = quiet_service(tmp_path, ISPBX_AUTH="off", ISPBX_API_TOKENS="").start()
    try:
        for path in ("/endpoints", "/endpoints/nope"):
            assert service.get(path, token=None).status_code in (200, 404)
        assert service.get("/endpoints", token=None).status_code == 200
        wait_for(lambda: "ISPBX_AUTH=off" in service.log(), 5, "the warning")
    finally:
        service.stop()
    assert re.search(r"WARNING .*ISPBX_AUTH=off", service.log())
    assert not (tmp_path / "admin-token").exists()


def test_auth_off_on_a_public_address_stops_the_start(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ISPBX_AUTH": "off",
        "ISPBX_HTTP_HOST": "0.0.0.0",
        "ISPBX_HTTP_PORT": str(free_port()),
        "ISPBX_TOKEN_FILE": str(tmp_path / "admin-token"),
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
    assert result.returncode != 0
    assert "ISPBX_AUTH" in result.stderr
    assert "loopback" in result.stderr


# -- 8: browser side -------------------------------------------------------------------------------

ORIGIN = "http://127.0.0.1:9999"


def test_no_cors_origin_by_default(tmp_path: Path) -> None:
    service = quiet_service(tmp_path).start()
    try:
        response = service.get("/endpoints", headers={"Origin": ORIGIN})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
        preflight = httpx.options(
            service.base_url + "/endpoints",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert "access-control-allow-origin" not in preflight.headers
    finally:
        service.stop()


def test_configured_cors_origins_are_allowed_and_no_others(tmp_path: Path) -> None:
    other = "http://127.0.0.1:9998"
    service = quiet_service(tmp_path, ISPBX_CORS_ORIGINS=f"{ORIGIN}, http://localhost:9999").start()
    try:
        response = service.get("/endpoints", headers={"Origin": ORIGIN})
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert (
            "access-control-allow-origin"
            not in service.get("/endpoints", headers={"Origin": other}).headers
        )
        preflight = httpx.options(
            service.base_url + "/endpoints/101",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        refused = httpx.options(
            service.base_url + "/endpoints",
            headers={"Origin": other, "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in refused.headers
        assert service.get("/endpoints", token=None, headers={"Origin": ORIGIN}).status_code == 401
    finally:
        service.stop()


def assert_ui_headers(headers: httpx.Headers) -> None:
    policy = headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    script_src = directives.get("script-src", directives.get("default-src"))
    assert script_src is not None
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "*" not in script_src
    assert directives["frame-ancestors"] == ["'none'"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


async def test_dashboard_files_carry_the_security_headers(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "app.js").write_text("console.log(1);")
    app = FastAPI()
    mount_ui(app, tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for path in ("/ui/", "/ui/index.html", "/ui/app.js"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert_ui_headers(response.headers)
        assert (await client.get("/ui")).status_code in (301, 302, 307, 308)


def test_the_real_dashboard_carries_the_security_headers(service: ServiceProcess) -> None:
    response = service.get("/ui/", token=None)
    assert response.status_code == 200
    assert_ui_headers(response.headers)


# -- 9: schemathesis -------------------------------------------------------------------------------


# The history and write routes validate what a schema cannot say (a cursor must be one of ours,
# a window must not end before it starts, an option must be one Asterisk knows, an extension must
# not exist yet) with a 4xx, which schemathesis's positive-data check counts as a rejected valid
# request: those routes run without that one check, every other route with all checks.
SEMANTIC_TAGS = "^(history|manage)$"
SCHEMATHESIS_RUNS = {
    "routes": ["--exclude-tag-regex", SEMANTIC_TAGS],
    "semantic": [
        "--include-tag-regex",
        SEMANTIC_TAGS,
        "--exclude-checks",
        "positive_data_acceptance",
    ],
}


@pytest.mark.parametrize("run", list(SCHEMATHESIS_RUNS))
@pytest.mark.parametrize("token", [ADMIN_TOKEN, VIEWER_TOKEN], ids=["admin", "viewer"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    service: ServiceProcess, token: str, run: str, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{service.base_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        *SCHEMATHESIS_RUNS[run],
        "--exclude-path",
        "/events",
        "--max-examples",
        "30",
        "--request-timeout",
        "10",
        "--warnings",
        "off",
        "--no-color",
        "--generation-database",
        "none",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert re.search(r"\b[1-9]\d* passed", output), output[-3000:]
    assert token not in service.log()
