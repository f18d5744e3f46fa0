"""No Docker engine runs here, so check what docker-compose.yml and the unit file reference."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ispbx.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def compose() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_asterisk_and_backend_sharing_one_network_namespace() -> None:
    services = compose()["services"]
    assert set(services) == {"asterisk", "backend"}
    assert services["backend"]["network_mode"] == "service:asterisk"
    assert "healthcheck" in services["asterisk"]
    assert "healthcheck" in services["backend"]


def test_every_build_context_and_dockerfile_exists() -> None:
    for name, service in compose()["services"].items():
        context = REPO / service["build"]["context"]
        assert context.is_dir(), name
        assert (context / service["build"]["dockerfile"]).is_file(), name


def test_files_copied_by_the_dockerfiles_exist() -> None:
    for name, service in compose()["services"].items():
        context = REPO / service["build"]["context"]
        dockerfile = (context / service["build"]["dockerfile"]).read_text()
        for sources in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE):
            for source in sources.split():
                assert list(context.glob(source)), f"{name}: COPY {source} matches nothing"


def test_backend_environment_names_are_real_settings() -> None:
    env = compose()["services"]["backend"]["environment"]
    fields = {f"ISPBX_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    assert env["ISPBX_PJSIP_CONF"] == "/etc/asterisk/pjsip.conf"


def test_backend_shares_the_asterisk_config_volume_writable_to_manage_endpoints() -> None:
    """The write path edits pjsip.conf in place and renames temp files in its directory."""
    services = compose()["services"]
    asterisk_volume = services["asterisk"]["volumes"][0].split(":")[0]
    assert f"{asterisk_volume}:/etc/asterisk" in services["backend"]["volumes"]
    assert services["backend"]["environment"]["ISPBX_MANAGED_CONF"] == "pjsip_ispbx.conf"


def test_systemd_unit_may_write_the_asterisk_config_directory_only() -> None:
    unit = (REPO / "deploy" / "systemd" / "ispbx.service").read_text()
    assert "ReadWritePaths=/etc/asterisk\n" in unit
    assert "ProtectSystem=strict" in unit  # everything else stays read-only


def test_backend_image_runs_as_non_root() -> None:
    dockerfile = (REPO / "backend" / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\S+", dockerfile, flags=re.MULTILINE)


def test_systemd_unit_uses_real_settings_and_paths() -> None:
    unit = (REPO / "deploy" / "systemd" / "ispbx.service").read_text()
    fields = {f"ISPBX_{name.upper()}" for name in Settings.model_fields}
    names = set(re.findall(r"Environment=(ISPBX_\w+)=", unit))
    assert names and names <= fields
    assert "User=ispbx" in unit
    assert "ExecStart=/opt/ispbx/.venv/bin/python src/main.py" in unit


def test_backend_image_is_built_with_the_dashboard_in_its_context() -> None:
    """The wheel carries the dashboard through the ispbx/ui link to frontend/: the image's build
    context must hold both, or /ui/ is not served from the container."""
    backend = compose()["services"]["backend"]["build"]
    context = REPO / backend["context"]
    dockerfile = (context / backend["dockerfile"]).read_text()
    assert (context / "frontend" / "index.html").is_file()
    assert re.search(r"^COPY frontend frontend$", dockerfile, flags=re.MULTILINE)
    link = context / "backend" / "src" / "ispbx" / "ui"
    assert link.is_symlink() and (link / "index.html").is_file()
