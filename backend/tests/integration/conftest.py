"""Fixtures for tests against the real Asterisk lab (see ispbx_lab.lab).

Under CI=true a lab that cannot be provisioned fails the run with its one-line reason; elsewhere
the integration tests are skipped with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ispbx_lab.lab import Lab, LabUnavailable, ensure_rootfs, free_port
from tests.support import ServiceProcess, wait_for


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Asterisk lab unavailable: {reason}", pytrace=False)
    pytest.skip(f"Asterisk lab unavailable: {reason}")


def new_lab(tag: str, pjsip_files: dict[str, str] | None = None) -> Lab:
    import socket

    return Lab(
        name=f"test-{os.getpid()}-{tag}",
        ami_port=free_port(),
        sip_port=free_port(socket.SOCK_DGRAM),
        http_port=free_port(),
        pjsip_files=pjsip_files or {},
    )


@pytest.fixture(scope="session")
def rootfs() -> None:
    try:
        ensure_rootfs()
    except LabUnavailable as exc:
        _unavailable(str(exc))


def start_or_skip(instance: Lab) -> None:
    try:
        instance.start()
    except LabUnavailable as exc:
        instance.remove()
        _unavailable(str(exc))


def running_lab(tag: str, pjsip_files: dict[str, str] | None = None) -> Iterator[Lab]:
    """For module-scoped lab fixtures: ``yield from running_lab("tag", files)``."""
    instance = new_lab(tag, pjsip_files)
    start_or_skip(instance)
    try:
        yield instance
    finally:
        instance.remove()


def running_service(
    lab: Lab, tmp_path_factory: pytest.TempPathFactory, *, prefetched: bool = False
) -> Iterator[ServiceProcess]:
    """The service on ``lab``, once synced (or prefetched); ``yield from`` it in a fixture."""
    log = tmp_path_factory.mktemp("service") / "service.log"
    process = ServiceProcess(lab.service_env(), log).start()
    key = "prefetch_seconds" if prefetched else "sync_seconds"
    try:
        wait_for(lambda: process.get("/health").json()["inventory"][key] is not None, 60, key)
        # The list is rebuilt a debounce (≤ 0.12 s) after the sync: wait until it shows it.
        wait_for(lambda: process.get("/endpoints").json()["synced"], 5, "the list after the sync")
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def lab(rootfs: None) -> Iterator[Lab]:
    """One lab Asterisk with the sample pjsip.conf, shared by the session's tests."""
    instance = new_lab("shared")
    start_or_skip(instance)
    yield instance
    instance.remove()
