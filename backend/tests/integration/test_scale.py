"""5,000 endpoints with non-ASCII caller IDs: every one comes through intact (big AMI lists split
UTF-8 characters across TCP reads, which panoramisk 1.4 alone would drop)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ispbx_lab.lab import Lab, generate_pjsip
from tests.integration.conftest import running_lab, running_service
from tests.support import ADMIN_TOKEN, ServiceProcess

pytestmark = pytest.mark.integration
COUNT = 5000
FIRST = 10000
NAMES = {n: f"Jörg Müller-Ødegård {n}" for n in range(FIRST, FIRST + COUNT)}


@pytest.fixture(scope="module")
def big_lab(rootfs: None) -> Iterator[Lab]:
    yield from running_lab("big", {"pjsip.conf": generate_pjsip(COUNT, first=FIRST, names=NAMES)})


@pytest.fixture(scope="module")
def service(big_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    yield from running_service(big_lab, tmp_path_factory, prefetched=True)


def test_all_endpoints_are_listed(service: ServiceProcess) -> None:
    body = service.get("/endpoints").json()
    assert [e["extension"] for e in body["endpoints"]] == [str(n) for n in NAMES]
    assert all(e["in_asterisk"] for e in body["endpoints"])


def test_every_caller_id_from_ami_is_intact(service: ServiceProcess) -> None:
    broken = []
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=service.base_url, timeout=5, headers=auth) as client:
        for number, name in NAMES.items():
            endpoint = client.get(f"/endpoints/{number}").json()["details"]["endpoint"]
            if endpoint.get("callerid") != f'"{name}" <{number}>':
                broken.append((number, endpoint.get("callerid")))
    assert broken == []
