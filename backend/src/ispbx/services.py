"""Everything the routes need, built in the FastAPI lifespan (never at import): the token store and
a registry of :class:`~ispbx.pbx.pbx.Pbx` units keyed by a short id."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from ispbx.history.service import History
from ispbx.pbx.detail import DetailFields
from ispbx.pbx.pbx import Pbx
from ispbx.security.tokens import TokenStore
from ispbx.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_PBX = "default"


@dataclass
class Services:
    settings: Settings
    tokens: TokenStore
    history: History
    pbxes: dict[str, Pbx]

    @classmethod
    async def open(cls, settings: Settings, fields: DetailFields) -> Services:
        """Build everything; the history database is opened and migrated here."""
        if settings.uses_sample_pjsip_conf:
            log.warning(
                "ISPBX_PJSIP_CONF is unset and /etc/asterisk/pjsip.conf does not exist: "
                "using the bundled sample %s",
                settings.pjsip_conf_path,
            )
        history = await History.open(settings.database_url, days=settings.history_days)
        pbxes = {
            config.id: Pbx(
                config,
                fields,
                history,
                flap_changes=settings.flap_changes,
                flap_window=timedelta(minutes=settings.flap_minutes),
            )
            for config in settings.pbxes()
        }
        return cls(settings, TokenStore.from_settings(settings), history, pbxes)

    @property
    def pbx(self) -> Pbx:
        """The PBX the routes serve (the only one, until several are configured)."""
        return self.pbxes[DEFAULT_PBX]

    async def start(self) -> None:
        await self.history.start()
        for pbx in self.pbxes.values():
            await pbx.start()

    async def stop(self) -> None:
        for pbx in self.pbxes.values():
            await pbx.stop()  # records each PBX's "session stopped" first
        await self.history.stop()

    def close_streams(self) -> None:
        """Ask every open /events stream to finish (the service is shutting down)."""
        for pbx in self.pbxes.values():
            pbx.publisher.close_streams()
