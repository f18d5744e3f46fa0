from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ispbx.settings import (
    BUNDLED_DETAIL_INI,
    SAMPLE_PJSIP_CONF,
    SettingsError,
    load_settings,
)

BACKEND = Path(__file__).resolve().parents[2]


def write_ini(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "service.ini"
    path.write_text(text)
    return path


def test_defaults_without_environment() -> None:
    settings = load_settings({})
    assert (settings.ami_host, settings.ami_port) == ("127.0.0.1", 5038)
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8000)
    assert settings.detail_ini == BUNDLED_DETAIL_INI
    assert settings.ami_secret == ""  # no secret is bundled


def test_ini_overrides_defaults(tmp_path: Path) -> None:
    ini = write_ini(tmp_path, "[ami]\nport = 6038\nsecret = s3\n[http]\nport = 9000\n")
    settings = load_settings({"ISPBX_CONFIG": str(ini)})
    assert (settings.ami_port, settings.ami_secret, settings.http_port) == (6038, "s3", 9000)


def test_environment_overrides_ini(tmp_path: Path) -> None:
    ini = write_ini(tmp_path, "[ami]\nport = 6038\nusername = fromini\n")
    settings = load_settings({"ISPBX_CONFIG": str(ini), "ISPBX_AMI_PORT": "7038"})
    assert settings.ami_port == 7038
    assert settings.ami_username == "fromini"


def test_bad_port_in_environment_names_the_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"ISPBX_AMI_PORT": "abc"})
    assert str(caught.value) == "ISPBX_AMI_PORT: not a valid port: 'abc'"


@pytest.mark.parametrize("value", ["0", "65536", "-1", "80x", ""])
def test_out_of_range_http_port_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="ISPBX_HTTP_PORT: not a valid port"):
        load_settings({"ISPBX_HTTP_PORT": value})


def test_bad_port_in_ini_names_the_ini_option(tmp_path: Path) -> None:
    ini = write_ini(tmp_path, "[ami]\nport = five\n")
    with pytest.raises(SettingsError, match=r"\[ami\] port: not a valid port: 'five'"):
        load_settings({"ISPBX_CONFIG": str(ini)})


def test_missing_ini_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^ISPBX_CONFIG: cannot read '/nonexistent\.ini'"):
        load_settings({"ISPBX_CONFIG": "/nonexistent.ini"})


def test_missing_detail_ini_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"^ISPBX_DETAIL_INI: file not found"):
        load_settings({"ISPBX_DETAIL_INI": "/nonexistent/detail.ini"})


def test_pjsip_conf_setting_is_used_as_given(tmp_path: Path) -> None:
    conf = tmp_path / "pjsip.conf"
    settings = load_settings({"ISPBX_PJSIP_CONF": str(conf)})
    assert settings.pjsip_conf_path == conf
    assert not settings.uses_sample_pjsip_conf


def test_sample_pjsip_conf_when_unset_and_no_system_file() -> None:
    settings = load_settings({})
    if Path("/etc/asterisk/pjsip.conf").exists():
        pytest.skip("this machine has /etc/asterisk/pjsip.conf")
    assert settings.pjsip_conf_path == SAMPLE_PJSIP_CONF
    assert settings.uses_sample_pjsip_conf


def test_main_exits_non_zero_with_one_line_naming_the_setting() -> None:
    result = subprocess.run(
        [sys.executable, "src/main.py"],
        cwd=BACKEND,
        env={"ISPBX_AMI_PORT": "abc", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "ispbx: ISPBX_AMI_PORT: not a valid port: 'abc'"
