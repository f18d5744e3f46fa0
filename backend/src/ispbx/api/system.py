"""GET / and GET /health: public, never touch AMI."""

from __future__ import annotations

from fastapi import APIRouter

from ispbx import __version__
from ispbx.api.dependencies import ServicesDep
from ispbx.api.schemas import AmiHealth, ConfigHealth, Health, InventoryHealth, Root
from ispbx.auth import redact_text

router = APIRouter(tags=["service"])


@router.get("/", response_model=Root)
async def root() -> Root:
    return Root(message="ISPBX Manager API", version=__version__)


@router.get("/health", response_model=Health)
async def health(services: ServicesDep) -> Health:
    """Always 200: ``degraded`` while AMI is down or pjsip.conf has no good parse.

    Public, so no message here ever quotes a secret (``password = …`` is masked)."""
    ami = services.session.state
    view = services.store.view
    inventory = services.inventory
    ok = ami.connected and view.config is not None and view.error is None
    return Health(
        status="ok" if ok else "degraded",
        ami=AmiHealth(
            connected=ami.connected,
            host=ami.host,
            port=ami.port,
            last_error=redact_text(ami.last_error),
            since=ami.since,
        ),
        config=ConfigHealth(
            path=str(view.path),
            loaded=view.config is not None,
            error=redact_text(view.error),
            warnings=[redact_text(w) for w in view.warnings],
        ),
        inventory=InventoryHealth(
            synced=inventory.synced,
            endpoints=len(inventory.state.endpoints),
            sync_seconds=inventory.sync_seconds,
            prefetch_seconds=inventory.prefetch_seconds,
        ),
    )
