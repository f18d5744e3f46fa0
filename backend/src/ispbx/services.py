"""Everything the routes need, built in the FastAPI lifespan (never at import)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ispbx.ami import AmiSession
from ispbx.auth import TokenStore
from ispbx.detail import DetailFields, load_detail_ini
from ispbx.inventory import Inventory
from ispbx.pjsip.store import ConfigStore
from ispbx.settings import Settings
from ispbx.snapshot import ListPublisher
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
    publisher: ListPublisher
    tokens: TokenStore

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
        inventory = Inventory(session, fields=fields)
        views = EndpointViews(inventory, store, fields, session)
        publisher = ListPublisher(views)
        tokens = TokenStore.from_settings(settings) if settings.auth == "on" else TokenStore([])
        if settings.auth == "off":
            log.warning(
                "ISPBX_AUTH=off: the API is open to anyone who can reach %s", settings.http_host
            )
        return cls(settings, session, store, inventory, fields, views, publisher, tokens)

    async def start(self) -> None:
        await self.store.reload()
        self.store.add_listener(self.publisher.everything_changed)
        self.inventory.add_listener(self.publisher.endpoints_changed)
        self.session.add_state_listener(self.publisher.envelope_changed)
        self.publisher.start()
        self.store.start()
        self.inventory.start()
        self.session.start()  # never waits for AMI: connects in the background

    async def stop(self) -> None:
        await self.session.stop()
        await self.inventory.stop()
        await self.store.stop()
        await self.publisher.stop()
