"""Everything the routes need, built in the FastAPI lifespan (never at import)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ispbx.ami import AmiSession
from ispbx.detail import DetailFields, load_detail_ini
from ispbx.inventory import Inventory
from ispbx.pjsip.store import ConfigStore
from ispbx.settings import Settings
from ispbx.views import EndpointViews

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    session: AmiSession
    store: ConfigStore
    inventory: Inventory
    fields: DetailFields
    views: EndpointViews

    @classmethod
    def build(cls, settings: Settings) -> Services:
        fields = load_detail_ini(settings.detail_ini)
        session = AmiSession(
            settings.ami_host, settings.ami_port, settings.ami_username, settings.ami_secret
        )
        if settings.uses_sample_pjsip_conf:
            log.warning(
                "ISPBX_PJSIP_CONF is unset and /etc/asterisk/pjsip.conf does not exist: "
                "using the bundled sample %s",
                settings.pjsip_conf_path,
            )
        store = ConfigStore(settings.pjsip_conf_path)
        inventory = Inventory(session)
        views = EndpointViews(inventory, store, fields, session)
        return cls(settings, session, store, inventory, fields, views)

    async def start(self) -> None:
        await self.store.reload()
        self.store.start()
        self.inventory.start()
        self.session.start()  # never waits for AMI: connects in the background

    async def stop(self) -> None:
        await self.session.stop()
        await self.inventory.stop()
        await self.store.stop()
