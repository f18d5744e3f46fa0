"""Managing endpoints on the lab Asterisk, on the messy multi-file config: every write is checked
against Asterisk's own ``pjsip show``, and by a byte comparison of every file."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench.amiproxy import LoopThread
from prometheus_client.parser import text_string_to_metric_families

from ispbx_lab.lab import Lab, free_port
from tests.integration.conftest import running_lab
from tests.support import ADMIN_TOKEN, VIEWER_TOKEN, ServiceProcess, wait_for

pytestmark = pytest.mark.integration
CONF_DIR = Path(__file__).parent / "pjsip_multi"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def conf_files() -> dict[str, str]:
    return {str(p.relative_to(CONF_DIR)): p.read_text() for p in CONF_DIR.rglob("*.conf")}


@pytest.fixture(scope="module")
def lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("manage", conf_files())


def start(lab: Lab, tmp: Path, **env: str) -> ServiceProcess:
    service = ServiceProcess({**lab.service_env(), **env}, tmp / "service.log").start()
    wait_for(lambda: service.get("/health").json()["inventory"]["synced"], 20, "the first sync")
    return service


@pytest.fixture(scope="module")
def service(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    process = start(lab, tmp_path_factory.mktemp("manage"))
    yield process
    process.stop()


def call(
    service: ServiceProcess, method: str, path: str, token: str | None = ADMIN_TOKEN, **kwargs: Any
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    headers = {**auth, **kwargs.pop("headers", {})}
    return httpx.request(method, service.base_url + path, headers=headers, timeout=30, **kwargs)


def etag(service: ServiceProcess, extension: str = "201") -> str:
    found: str = service.get(f"/endpoints/{extension}/config").headers["etag"]
    return found


def files(lab: Lab) -> dict[str, bytes]:
    return {str(p.relative_to(lab.etc)): p.read_bytes() for p in sorted(lab.etc.rglob("*.conf"))}


def changed_lines(before: dict[str, bytes], after: dict[str, bytes]) -> dict[str, list[str]]:
    """Per file, the lines removed (-) and added (+)."""
    changes: dict[str, list[str]] = {}
    for name in sorted(before.keys() | after.keys()):
        old = before.get(name, b"").decode().splitlines()
        new = after.get(name, b"").decode().splitlines()
        lines = [
            line
            for line in difflib.unified_diff(old, new, lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        if lines:
            changes[name] = lines
    return changes


def metric(service: ServiceProcess, name: str, **labels: str) -> float | None:
    """One sample of the service's /metrics (None: no such series)."""
    text = call(service, "GET", "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"pbx": "default", **labels}:
                return float(sample.value)
    return None


def shown(lab: Lab, kind: str, name: str) -> dict[str, str]:
    """``pjsip show <kind> <name>`` as {parameter: value} (empty: Asterisk has no such object)."""
    out = lab.cli(f"pjsip show {kind} {name}").stdout
    values: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition(" : ")
        if sep and key.strip() and " " not in key.strip():
            values.setdefault(key.strip(), value.strip())
    return values


def test_create_patch_delete_round_trip_confirmed_by_pjsip_show(
    lab: Lab, service: ServiceProcess
) -> None:
    body = {
        "extension": "301",
        "context": "sales",
        "callerid": "Carol <301>",
        "codecs": ["g722", "ulaw"],
        "transport": "transport-udp",
        "max_contacts": 2,
        "options": {"endpoint": {"direct_media": False}},
    }
    created = call(service, "POST", "/endpoints", json=body)
    assert created.status_code == 201, created.text
    answer = created.json()
    password = answer["password"]
    assert password and len(password) >= 12
    assert answer["endpoint"]["in_asterisk"] is True
    endpoint = shown(lab, "endpoint", "301")
    assert (endpoint["context"], endpoint["allow"]) == ("sales", "(g722|ulaw)")
    assert (endpoint["callerid"], endpoint["direct_media"]) == ('"Carol" <301>', "false")
    assert shown(lab, "auth", "301")["password"] == password
    assert shown(lab, "aor", "301")["max_contacts"] == "2"
    rows = service.get("/endpoints").json()["endpoints"]
    row = next(r for r in rows if r["extension"] == "301")
    assert (row["in_asterisk"], row["exists_in_config"]) == (True, True)

    patched = call(
        service,
        "PATCH",
        "/endpoints/301",
        headers={"If-Match": etag(service, "301")},
        json={"endpoint": {"context": "support", "allow": ["alaw"]}, "aor": {"max_contacts": 3}},
    )
    assert patched.status_code == 200, patched.text
    endpoint = shown(lab, "endpoint", "301")
    assert (endpoint["context"], endpoint["allow"]) == ("support", "(alaw)")
    assert shown(lab, "aor", "301")["max_contacts"] == "3"
    config = service.get("/endpoints/301/config").json()["config"]
    assert (config["context"], config["allow"]) == ("support", "alaw")

    removed = call(
        service,
        "PATCH",
        "/endpoints/301",
        headers={"If-Match": etag(service, "301")},
        json={"endpoint": {"context": None}},
    )
    assert removed.status_code == 200, removed.text
    assert shown(lab, "endpoint", "301")["context"] == "default"  # Asterisk's default again

    applied = metric(service, "ispbx_config_apply_duration_seconds_count") or 0
    deleted = call(service, "DELETE", "/endpoints/301", headers={"If-Match": etag(service, "301")})
    assert deleted.status_code == 200, deleted.text
    assert metric(service, "ispbx_config_apply_duration_seconds_count") == applied + 1
    assert metric(service, "ispbx_config_writes_total", operation="delete", result="applied")
    assert shown(lab, "endpoint", "301") == {}
    assert shown(lab, "auth", "301") == {}
    assert "301" not in [r["extension"] for r in service.get("/endpoints").json()["endpoints"]]
    assert service.get("/endpoints/301").status_code == 404


def test_a_write_in_the_messy_config_changes_only_the_lines_it_must(
    lab: Lab, service: ServiceProcess
) -> None:
    before = files(lab)
    patch = {"endpoint": {"language": "it", "context": "override-ctx"}}
    response = call(
        service, "PATCH", "/endpoints/201", headers={"If-Match": etag(service)}, json=patch
    )
    assert response.status_code == 200, response.text
    after = files(lab)
    assert changed_lines(before, after) == {
        # language lives in the [201](+) continuation; context came only from a template, so
        # the endpoint's own section gets an override line and the template stays as it was
        "pjsip.conf": [
            "+context = override-ctx",
            "-language = de",
            "+language = it",
        ]
    }
    endpoint = shown(lab, "endpoint", "201")
    assert (endpoint["language"], endpoint["context"]) == ("it", "override-ctx")
    assert shown(lab, "endpoint", "202")["context"] == "own-ctx"  # untouched neighbours
    assert shown(lab, "endpoint", "alice.smith")["language"] == "es"


def test_two_writes_with_the_same_etag_give_one_412_and_a_hand_edit_gives_412(
    lab: Lab, service: ServiceProcess
) -> None:
    tag = etag(service, "203")
    first = call(
        service,
        "PATCH",
        "/endpoints/203",
        headers={"If-Match": tag},
        json={"endpoint": {"language": "pt"}},
    )
    second = call(
        service,
        "PATCH",
        "/endpoints/203",
        headers={"If-Match": tag},
        json={"endpoint": {"language": "nl"}},
    )
    assert (first.status_code, second.status_code) == (200, 412)
    assert shown(lab, "endpoint", "203")["language"] == "pt"

    tag = etag(service, "203")
    users = lab.etc / "pjsip.d" / "10-users.conf"
    users.write_bytes(users.read_bytes() + b"; a hand edit on the PBX\n")
    handed = call(
        service,
        "PATCH",
        "/endpoints/203",
        headers={"If-Match": tag},
        json={"endpoint": {"language": "nl"}},
    )
    assert handed.status_code == 412
    assert b"language = nl" not in users.read_bytes()

    missing = call(service, "PATCH", "/endpoints/203", json={"endpoint": {"language": "nl"}})
    assert missing.status_code == 428


@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        ({"endpoint": {"rtp_timeout": "soon"}}, "rtp_timeout", "number"),
        ({"endpoint": {"contxt": "x"}}, "contxt", "context"),
        ({"endpoint": {"dtmf_mode": "loud"}}, "dtmf_mode", "rfc4733"),
        ({"endpoint": {"aors": "no-such-aor"}}, "aors", "no-such-aor"),
        ({"endpoint": {"allow": ["ulaw", "nosuchcodec"]}}, "allow", "nosuchcodec"),
        ({"endpoint": {"type": "aor"}}, "type", "cannot be changed"),
    ],
)
def test_a_write_asterisks_rules_reject_never_reaches_disk(
    lab: Lab, service: ServiceProcess, patch: dict[str, Any], field: str, words: str
) -> None:
    before = files(lab)
    response = call(
        service, "PATCH", "/endpoints/202", headers={"If-Match": etag(service, "202")}, json=patch
    )
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(field in error["loc"] and words in error["msg"] for error in errors), errors
    assert files(lab) == before


def test_a_viewer_gets_403_on_every_write(service: ServiceProcess) -> None:
    writes = [
        ("POST", "/endpoints", {"json": {"extension": "399"}}),
        ("PATCH", "/endpoints/201", {"json": {"endpoint": {"language": "x"}}}),
        ("DELETE", "/endpoints/201", {}),
        (
            "POST",
            "/endpoints/import",
            {"content": b"extension\n398\n", "headers": {"Content-Type": "text/csv"}},
        ),
        ("POST", "/config/versions/1/revert", {}),
        ("GET", "/config/versions", {}),
    ]
    for method, path, kwargs in writes:
        assert call(service, method, path, token=VIEWER_TOKEN, **kwargs).status_code == 403, path
        assert call(service, method, path, token=None, **kwargs).status_code == 401, path


def test_an_import_is_all_or_nothing_with_every_bad_row_reported(
    lab: Lab, service: ServiceProcess
) -> None:
    before = files(lab)
    bad = "extension,context,max_contacts\n311,sales,1\n312,sales,lots\n313,sales,1\n"
    refused = call(
        service,
        "POST",
        "/endpoints/import",
        content=bad.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert refused.status_code == 422
    (error,) = refused.json()["detail"]
    assert error["loc"][:2] == ["body", "line 3"] and "max_contacts" in error["msg"]
    assert files(lab) == before
    assert shown(lab, "endpoint", "311") == {}

    dry = call(
        service,
        "POST",
        "/endpoints/import",
        params={"dry_run": "true"},
        content=bad.replace("lots", "2").encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert dry.status_code == 200 and dry.json()["status"] == "dry_run"
    assert files(lab) == before

    good = bad.replace("lots", "2")
    done = call(
        service,
        "POST",
        "/endpoints/import",
        content=good.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert done.status_code == 200, done.text
    assert sorted(done.json()["passwords"]) == ["311", "312", "313"]
    for extension in ("311", "312", "313"):
        assert shown(lab, "endpoint", extension)["context"] == "sales"
    assert shown(lab, "aor", "312")["max_contacts"] == "2"


def test_create_of_an_existing_extension_is_409_and_a_dry_run_writes_nothing(
    lab: Lab, service: ServiceProcess
) -> None:
    before = files(lab)
    assert call(service, "POST", "/endpoints", json={"extension": "202"}).status_code == 409
    dry = call(service, "POST", "/endpoints", params={"dry_run": "true"}, json={"extension": "321"})
    assert dry.status_code == 200
    assert dry.json()["status"] == "dry_run"
    assert any("[321]" in diff for diff in dry.json()["diff"].values())
    assert files(lab) == before


def test_a_version_can_be_reverted_through_the_pipeline(lab: Lab, service: ServiceProcess) -> None:
    created = call(service, "POST", "/endpoints", json={"extension": "331", "context": "x"})
    assert created.status_code == 201
    version = created.json()["version"]
    listed = call(service, "GET", "/config/versions")
    assert listed.status_code == 200
    assert listed.json()["versions"][0]["id"] == version
    detail = call(service, "GET", f"/config/versions/{version}").json()
    assert "+[331]" in detail["diff"]
    assert "********" in detail["diff"]  # the password, masked in the diff
    reverted = call(
        service,
        "POST",
        f"/config/versions/{version}/revert",
        headers={"If-Match": listed.headers["etag"]},
    )
    assert reverted.status_code == 200, reverted.text
    assert shown(lab, "endpoint", "331") == {}


class FakeReloadProxy:
    """Between the service and AMI: answers ``Reload`` with success but never forwards it, the
    fault only a read-back catches (Asterisk's own Reload answers success whatever it loaded)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.loop = LoopThread()
        self.swallowed = 0
        self._server: asyncio.Server | None = None

    def start(self) -> FakeReloadProxy:
        self.loop.run(self._listen())
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def down() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        task = asyncio.create_task(down())
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                message = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    line.split(": ", 1) for line in message.decode().split("\r\n") if ": " in line
                )
                if headers.get("Action", "").lower() == "reload":
                    self.swallowed += 1
                    writer.write(
                        f"Response: Success\r\nActionID: {headers.get('ActionID', '')}\r\n"
                        "Message: Module Reloaded\r\n\r\n".encode()
                    )
                    await writer.drain()
                    continue
                up_writer.write(message)
                await up_writer.drain()
        task.cancel()
        writer.close()
        up_writer.close()

    def stop(self) -> None:
        if self._server is not None:
            self.loop.run(_close(self._server))
        self.loop.stop()


async def _close(server: asyncio.Server) -> None:
    server.close()


def test_a_change_asterisk_did_not_load_is_rolled_back_and_reported(
    lab: Lab, tmp_path: Path
) -> None:
    proxy = FakeReloadProxy(lab.ami_port).start()
    service = start(lab, tmp_path, ISPBX_AMI_PORT=str(proxy.port))
    try:
        before = files(lab)
        response = call(
            service,
            "PATCH",
            "/endpoints/202",
            headers={"If-Match": etag(service, "202")},
            json={"endpoint": {"context": "never-loaded"}},
        )
        assert response.status_code == 409, response.text
        body = response.json()
        assert "rolled back" in body["detail"]
        assert {"option": "context", "expected": "never-loaded"}.items() <= body["mismatches"][
            0
        ].items()
        assert files(lab) == before  # the previous files are back
        assert proxy.swallowed == 2  # the change's reload, and the rollback's
        audit = call(service, "GET", "/audit").json()["entries"]
        assert audit[0]["result"] == "rolled_back" and "never-loaded" in audit[0]["detail"]
        rolled = {"operation": "update", "result": "rolled_back"}
        assert metric(service, "ispbx_config_writes_total", **rolled) == 1
        assert metric(service, "ispbx_config_rollbacks_total") == 1
        assert metric(service, "ispbx_config_apply_duration_seconds_count") == 0
    finally:
        service.stop()
        proxy.stop()


def test_no_write_without_ami_a_realtime_mapping_or_a_writable_file(
    lab: Lab, service: ServiceProcess, tmp_path: Path
) -> None:
    env = {**lab.service_env(), "ISPBX_AMI_PORT": str(free_port())}  # nothing listens there
    down = ServiceProcess(env, tmp_path / "down.log").start()
    try:
        refused = call(down, "POST", "/endpoints", json={"extension": "341"})
        assert refused.status_code == 503 and "not connected" in refused.json()["detail"]
    finally:
        down.stop()

    sorcery = lab.etc / "sorcery.conf"
    sorcery.write_text("[res_pjsip]\nendpoint=realtime,ps_endpoints\n")
    try:
        refused = call(service, "POST", "/endpoints", json={"extension": "342"})
        assert refused.status_code == 409 and "realtime" in refused.json()["detail"]
    finally:
        sorcery.unlink()

    main = lab.etc / "pjsip.conf"
    before = main.read_bytes()
    subprocess.run(["chattr", "+i", str(main)], check=True)
    try:
        refused = call(
            service,
            "PATCH",
            "/endpoints/202",
            headers={"If-Match": etag(service, "202")},
            json={"endpoint": {"language": "sv"}},
        )
        assert refused.status_code == 503, refused.text
        assert str(main) in refused.json()["detail"] and "permission" in refused.json()["detail"]
    finally:
        subprocess.run(["chattr", "-i", str(main)], check=True)
    assert main.read_bytes() == before


def test_every_attempt_is_in_the_audit(service: ServiceProcess) -> None:
    entries = call(service, "GET", "/audit", params={"limit": "1000"}).json()["entries"]
    results = {entry["result"] for entry in entries}
    assert {"applied", "rejected"} <= results
    assert all(entry["who"].startswith("admin#") for entry in entries)
    operations = {entry["operation"] for entry in entries}
    assert {"create", "update", "delete", "import", "revert"} <= operations


def test_export_is_csv_in_the_import_columns_with_passwords_for_admins_who_ask(
    service: ServiceProcess,
) -> None:
    admin = call(service, "GET", "/endpoints", params={"format": "csv", "secrets": "true"})
    assert admin.headers["content-type"].startswith("text/csv")
    lines = admin.text.splitlines()
    assert lines[0] == "extension,password,context,callerid,codecs,transport,templates,max_contacts"
    row = next(line for line in lines if line.startswith("202,"))
    assert row.startswith("202,secret202,own-ctx,")
    viewer = call(
        service,
        "GET",
        "/endpoints",
        token=VIEWER_TOKEN,
        params={"format": "csv", "secrets": "true"},
    )
    assert "secret202" not in viewer.text
    plain = call(service, "GET", "/endpoints", params={"format": "csv"})
    assert "secret202" not in plain.text


def test_me_names_the_role_and_the_option_table_is_offered(service: ServiceProcess) -> None:
    me = call(service, "GET", "/me").json()
    assert (me["role"], me["can_write"]) == ("admin", True) and me["name"].startswith("admin#")
    viewer = call(service, "GET", "/me", token=VIEWER_TOKEN).json()
    assert (viewer["role"], viewer["can_write"]) == ("viewer", False)
    aor = call(service, "GET", "/config/options", params={"type": "aor"}).json()
    names = {option["name"]: option for option in aor["options"]}
    assert names["max_contacts"]["kind"] == "integer"
    endpoint = call(service, "GET", "/config/options", token=VIEWER_TOKEN).json()
    dtmf = next(o for o in endpoint["options"] if o["name"] == "dtmf_mode")
    assert "rfc4733" in dtmf["values"]
    assert {"ulaw", "alaw", "g722"} <= set(endpoint["codecs"])
    assert endpoint["asterisk_version"].startswith("22.")


def test_the_option_table_offers_the_files_templates_and_transports(
    service: ServiceProcess,
) -> None:
    """A form picks templates (of the object's type: tpl-codecs has none) and transports."""
    endpoint = call(service, "GET", "/config/options", token=VIEWER_TOKEN).json()
    assert endpoint["templates"] == ["tpl-base", "tpl-child"]
    assert endpoint["transports"] == ["transport-udp"]
    auth = call(service, "GET", "/config/options", params={"type": "auth"}).json()
    assert auth["templates"] == []
