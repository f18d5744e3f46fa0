"""Tokens, roles and secret redaction (issue 5, items 1 and 3), and ISPBX_AUTH=off (item 1)."""

from __future__ import annotations

import hmac
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from ispbx.security import tokens as auth
from ispbx.security.redact import MASK, mask_set_var, redact, redact_text
from ispbx.security.tokens import (
    Principal,
    TokenFileError,
    TokenStore,
    ensure_token_file,
    load_or_create_token,
)
from ispbx.settings import SettingsError, load_settings

ADMIN = "admin-unit-token-0001"  # test credentials
VIEWER = "viewer-unit-token-0001"


# -- tokens and roles ------------------------------------------------------------------------------


def test_each_token_has_its_role_and_anything_else_none() -> None:
    store = TokenStore([("admin", ADMIN), ("viewer", VIEWER)])
    assert store.role_of(ADMIN) == "admin"
    assert store.role_of(VIEWER) == "viewer"
    for wrong in ["", "x", ADMIN[:-1], ADMIN + "1", ADMIN.upper(), f" {ADMIN}", "Bearer " + ADMIN]:
        assert store.role_of(wrong) is None, wrong
    assert store.role_of("jörg-ünicode-token") is None  # non-ASCII does not raise


def test_every_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """hmac.compare_digest, against every configured token even after a match."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    store = TokenStore([("admin", ADMIN), ("viewer", VIEWER), ("viewer", "third-token-0001")])
    assert store.role_of(ADMIN) == "admin"
    assert len(calls) == 3
    calls.clear()
    assert store.role_of("nope") is None
    assert len(calls) == 3


def test_only_admin_sees_secrets() -> None:
    assert Principal("admin").sees_secrets
    assert not Principal("viewer").sees_secrets


def test_configured_tokens_are_used_and_no_file_is_made(tmp_path: Path) -> None:
    token_file = tmp_path / "state" / "admin-token"
    settings = load_settings(
        {"ISPBX_API_TOKENS": f"admin:{ADMIN}, viewer:{VIEWER}", "ISPBX_TOKEN_FILE": str(token_file)}
    )
    store = TokenStore.from_settings(settings)
    assert (store.role_of(ADMIN), store.role_of(VIEWER)) == ("admin", "viewer")
    assert not token_file.exists()


@pytest.mark.parametrize("tokens", ["admin", "root:abcdefgh1", "admin:short", "viewer:"])
def test_malformed_token_lists_are_refused_naming_the_variable(tokens: str) -> None:
    with pytest.raises(SettingsError, match=r"^ISPBX_API_TOKENS: ") as caught:
        load_settings({"ISPBX_API_TOKENS": tokens})
    secret = tokens.partition(":")[2]
    if secret:
        assert secret not in str(caught.value)  # the message never quotes a token


def test_without_tokens_an_admin_token_is_made_once_in_a_private_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "state" / "ispbx" / "admin-token"
    env = {"ISPBX_TOKEN_FILE": str(token_file), "ISPBX_HTTP_PORT": "8123"}
    with caplog.at_level(logging.WARNING, logger="ispbx.security.tokens"):
        store = TokenStore.from_settings(load_settings(env))
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert store.role_of(token) == "admin"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert f"http://127.0.0.1:8123/ui/#token={token}" in caplog.text
    assert caplog.text.count(token) == 1

    again = TokenStore.from_settings(load_settings(env))  # a restart keeps the bookmark working
    assert again.role_of(token) == "admin"
    assert token_file.read_text().strip() == token


def test_an_empty_token_file_gets_a_new_token(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("\n")
    path.chmod(0o600)
    token = load_or_create_token(path)
    assert token and path.read_text().strip() == token
    assert load_or_create_token(path) == token


def test_two_generated_tokens_differ(tmp_path: Path) -> None:
    assert load_or_create_token(tmp_path / "a") != load_or_create_token(tmp_path / "b")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o660])
def test_a_token_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "admin-token"
    path.write_text("a-long-enough-token-0001\n")
    path.chmod(mode)
    with pytest.raises(TokenFileError) as caught:
        load_or_create_token(path)
    message = str(caught.value)
    assert message.startswith(f"ISPBX_TOKEN_FILE {path} may be read or written by group or others")
    assert f"mode {mode:04o}" in message
    assert "\n" not in message
    assert "a-long-enough-token-0001" not in message
    assert path.read_text() == "a-long-enough-token-0001\n"  # refused, not rewritten
    assert stat.S_IMODE(path.stat().st_mode) == mode  # nor repaired: the operator decides


@pytest.mark.parametrize("token", ["x", "1234567"])
def test_a_token_file_with_a_short_token_is_refused(tmp_path: Path, token: str) -> None:
    path = tmp_path / "admin-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    with pytest.raises(TokenFileError, match="shorter than 8 characters") as caught:
        load_or_create_token(path)
    assert str(path) in str(caught.value)
    assert load_or_create_token(path.with_name("other")) != token


def test_an_8_character_token_in_a_private_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("12345678\n")
    path.chmod(0o600)
    assert load_or_create_token(path) == "12345678"


def test_the_start_refuses_a_readable_token_file_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ispbx import cli

    path = tmp_path / "admin-token"
    path.write_text("a-long-enough-token-0001\n")
    path.chmod(0o644)
    for name in ("ISPBX_API_TOKENS", "ISPBX_AUTH", "ISPBX_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ISPBX_TOKEN_FILE", str(path))
    assert cli.main() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"ispbx: ISPBX_TOKEN_FILE {path} may be read or written")


def test_configured_tokens_leave_the_token_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text("x\n")
    path.chmod(0o644)
    settings = load_settings({"ISPBX_API_TOKENS": f"admin:{ADMIN}", "ISPBX_TOKEN_FILE": str(path)})
    ensure_token_file(settings)  # not used, so not checked


# -- set_var ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("API_PASSWORD=hunter2", f"API_PASSWORD={MASK}"),
        ("A=1,B=2", f"A={MASK},B={MASK}"),
        ("A=x,y,B=2", f"A={MASK},B={MASK}"),  # a value with a comma: its tail is dropped
        ("__INHERITED=v", f"__INHERITED={MASK}"),
        ("PJSIP_HEADER(add,X-Key)=k3y", f"PJSIP_HEADER(add,X-Key)={MASK}"),
        ("A=", f"A={MASK}"),
        ("noequals", MASK),
        ("", ""),
    ],
)
def test_set_var_shows_names_with_masked_values(value: str, masked: str) -> None:
    assert mask_set_var(value) == masked
    for key in ("set_var", "setvar"):
        assert redact({key: value}) == {key: masked}


def test_set_var_quoted_in_a_message_is_masked() -> None:
    text = "pjsip.conf:12: set_var = API_KEY=s3cr3t-k3y ignored"
    assert redact({"warnings": [text]}) == {
        "warnings": [f"pjsip.conf:12: set_var = API_KEY={MASK} ignored"]
    }
    assert "s3cr3t" not in redact_text("setvar: A=s3cr3t")


# -- ISPBX_AUTH=off --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.org"])
def test_auth_off_is_refused_unless_the_service_binds_to_loopback(host: str) -> None:
    with pytest.raises(SettingsError, match=r"^ISPBX_AUTH: .*loopback"):
        load_settings({"ISPBX_AUTH": "off", "ISPBX_HTTP_HOST": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_auth_off_is_accepted_on_loopback(host: str) -> None:
    assert load_settings({"ISPBX_AUTH": "off", "ISPBX_HTTP_HOST": host}).auth is False


def test_auth_off_from_the_ini_names_the_ini_option(tmp_path: Path) -> None:
    ini = tmp_path / "service.ini"
    ini.write_text("[api]\nauth = off\n[http]\nhost = 0.0.0.0\n")
    with pytest.raises(SettingsError, match=r"\[api\] auth: .*loopback"):
        load_settings({"ISPBX_CONFIG": str(ini)})


@pytest.mark.parametrize("value", ["no", "false", "0", ""])
def test_auth_accepts_only_on_or_off(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^ISPBX_AUTH: "):
        load_settings({"ISPBX_AUTH": value})


def test_auth_is_on_by_default() -> None:
    assert load_settings({}).auth is True


# -- redaction -------------------------------------------------------------------------------------

AMI_AUTH = {
    "ObjectType": "auth",
    "ObjectName": "101",
    "Username": "101",
    "Password": "101pass",
    "Md5Cred": "0123456789abcdef0123456789abcdef",
    "OauthSecret": "oauth-s3cret",
    "RefreshToken": "refresh-s3cret",
    "PasswordDigest": "digest-s3cret",
}
SECRETS = ["101pass", "0123456789abcdef", "oauth-s3cret", "refresh-s3cret", "digest-s3cret"]


def test_every_secret_key_is_masked_at_any_depth() -> None:
    body: dict[str, Any] = {
        "details": {
            "auth": {k.lower(): v for k, v in AMI_AUTH.items()},
            "auths": [AMI_AUTH],
            "outbound_auths": [{"password": "101pass"}],
        },
        "config": {
            "password": "101pass",
            "md5_cred": "0123456789abcdef0123456789abcdef",
            "oauth_secret": "oauth-s3cret",
            "refresh_token": "refresh-s3cret",
            "password_digest": "digest-s3cret",
            "callerid": '"user101" <101>',
        },
        "contacts": [[{"Password": "101pass"}]],
    }
    redacted = redact(body)
    text = repr(redacted)
    for secret in SECRETS:
        assert secret not in text
    assert redacted["details"]["auth"]["password"] == MASK
    assert redacted["details"]["auth"]["username"] == "101"
    assert redacted["config"]["callerid"] == '"user101" <101>'
    assert redacted["config"]["md5_cred"] == MASK
    assert body["config"]["password"] == "101pass"  # a copy: the admin's body is untouched


def test_non_secret_values_and_shapes_are_kept() -> None:
    body = {"a": [1, None, {"b": True}], "password": None, "n": 3}
    assert redact(body) == body


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("/etc/pjsip.conf:7: Unknown directive '#password=101pass', line skipped", "101pass"),
        ("password = 101pass", "101pass"),
        ("md5_cred=0123456789abcdef", "0123456789abcdef"),
        ("oauth_secret => oauth-s3cret", "oauth-s3cret"),
        ("Secret: ami-s3cret", "ami-s3cret"),
        ("refresh_token: refresh-s3cret; next", "refresh-s3cret"),
        ("PASSWORD_DIGEST=digest-s3cret", "digest-s3cret"),
    ],
)
def test_secrets_quoted_in_messages_are_masked(text: str, secret: str) -> None:
    masked = redact_text(text)
    assert masked is not None
    assert secret not in masked
    assert MASK in masked


def test_messages_without_secrets_are_unchanged() -> None:
    text = "/etc/asterisk/pjsip.conf:12: No '=' (equal sign) in line, skipped"
    assert redact_text(text) == text
    assert redact_text(None) is None


def test_messages_in_a_viewers_body_are_masked_too() -> None:
    """The envelope's config_error (and any warnings) may quote a pjsip.conf line."""
    body = {
        "status": "success",
        "config_error": "pjsip.conf:9: Inheritance requested, but category 'password=101pass' ...",
        "config": {"warnings": ["x.conf:3: Unknown directive '#md5_cred=0123abcd', line skipped"]},
        "ami": {"last_error": None},
    }
    redacted = redact(body)
    assert "101pass" not in repr(redacted) and "0123abcd" not in repr(redacted)
    assert redacted["config_error"].startswith("pjsip.conf:9: Inheritance requested")
    assert redacted["ami"] == {"last_error": None}
