"""GET / and GET /health: public, never touch AMI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ispbx import __version__
from ispbx.api.dependencies import ServicesDep
from ispbx.api.output import json_response
from ispbx.api.schemas import (
    AmiHealth,
    ConfigHealth,
    DatabaseHealth,
    Health,
    InventoryHealth,
    Root,
)
from ispbx.pbx.pbx import Pbx
from ispbx.services import Services

router = APIRouter(tags=["service"])


@router.get("/", response_model=Root)
async def get_root() -> Root:
    """The service's name and version."""
    return Root(message="ISPBX Manager API", version=__version__)


@router.get("/health", response_model=Health)
async def get_health(services: ServicesDep) -> Any:
    """Always 200: ``degraded`` while AMI is down or pjsip.conf has no good parse.

    Public, so no message here ever quotes a secret (``password = …`` is masked)."""
    return json_response(pbx_health(services.pbx, services).model_dump(mode="json"), None)


def pbx_health(pbx: Pbx, services: Services) -> Health:
    ami = pbx.session.state
    view = pbx.store.view
    inventory = pbx.inventory
    database = services.history.recorder.state()
    ok = ami.connected and view.config is not None and view.error is None and database.state == "ok"
    return Health(
        status="ok" if ok else "degraded",
        pbx=pbx.id,
        ami=AmiHealth(
            connected=ami.connected,
            host=ami.host,
            port=ami.port,
            last_error=ami.last_error,
            since=ami.since,
        ),
        config=ConfigHealth(
            path=str(view.path),
            loaded=view.config is not None,
            error=view.error,
            warnings=list(view.warnings),
        ),
        inventory=InventoryHealth(
            synced=inventory.synced,
            endpoints=inventory.endpoint_count(),
            sync_seconds=inventory.sync_seconds,
            prefetch_seconds=inventory.prefetch_seconds,
        ),
        database=DatabaseHealth(**database.as_dict()),
    )
