"""The read model: the inventory (Asterisk) merged with pjsip.conf, filtered by pjsip_detail.ini.

It asks the inventory and the config store through their query methods and builds each response
shape in one function. Routes only turn the result into HTTP (and hide secrets from viewers, on the
way out). Nothing here talks to AMI except :meth:`ReadModel.endpoint`, which may wait (≤ 2 s) for
one PJSIPShowEndpoint of an endpoint whose details the prefetch has not reached yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ispbx.ami import AmiSession
from ispbx.pbx.bodies import (
    DetailSections,
    EndpointBody,
    EndpointConfigBody,
    EndpointListBody,
    EnvelopeBody,
    ListRow,
    ProblemBody,
    StringMap,
)
from ispbx.pbx.detail import DetailFields
from ispbx.pbx.inventory import Inventory
from ispbx.pbx.state import EndpointDetail, split_names, status_of
from ispbx.pjsip.checks import ConfigCheck, ObjectCheck
from ispbx.pjsip.model import PjsipConfig
from ispbx.pjsip.options import Problem
from ispbx.pjsip.shown import shown_value
from ispbx.pjsip.store import ConfigStore


class ConfigUnavailable(Exception):
    """pjsip.conf has never been parsed successfully."""


def wire_name(option: str) -> str:
    """pjsip.conf option → AMI header name (callerid → Callerid, outbound_auth → OutboundAuth)."""
    return "".join(part[:1].upper() + part[1:] for part in option.split("_"))


def from_config(options: Mapping[str, str], object_type: str, name: str) -> dict[str, str]:
    """A config object in AMI spelling, as far as the file tells."""
    wire = {wire_name(k): v for k, v in options.items() if k != "type"}
    return {"ObjectType": object_type, "ObjectName": name, **wire}


def valid_extension(name: str) -> bool:
    """1 to 80 characters, no control character, white space, ``/`` or ``\\``."""
    return 0 < len(name) <= 80 and not any(
        ch.isspace() or ch in "/\\" or not ch.isprintable() for ch in name
    )


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in re.split(r"(\d+)", name)
        if part
    )


def shown_options(object_type: str, options: Mapping[str, str]) -> StringMap:
    """Effective options as Asterisk shows them (``disallow`` is folded into ``allow``)."""
    return {
        key: shown_value(object_type, key, value)
        for key, value in options.items()
        if key not in ("type", "disallow")
    }


def problem_body(check: ObjectCheck, problem: Problem) -> ProblemBody:
    return {
        "object_type": check.type,
        "object": check.name,
        "field": problem.field,
        "message": problem.message,
        "refused": problem.refused,
        "location": check.location,
    }


def first(items: list[StringMap]) -> StringMap | None:
    return items[0] if items else None


@dataclass
class ReadModel:
    inventory: Inventory
    store: ConfigStore
    fields: DetailFields
    session: AmiSession
    flapping: Callable[[str], bool] = field(default=lambda _name: False)

    # -- common --------------------------------------------------------------------------------

    def envelope(self) -> EnvelopeBody:
        """``stale_since`` is when the connection was lost, and only when there is a last known
        state (a sync happened); never synced, the states are not stale but unknown."""
        state = self.session.state
        synced = self.inventory.synced
        return {
            "status": "success",
            "ami_connected": state.connected,
            "synced": synced,
            "stale_since": state.since.isoformat() if synced and not state.connected else None,
            "config_error": self.store.view.error,
        }

    def _config(self) -> PjsipConfig | None:
        return self.store.view.config

    def _in_config(self, name: str, config: PjsipConfig | None) -> bool | None:
        return None if config is None else config.has_endpoint(name)

    def _in_asterisk(self, name: str) -> bool | None:
        return self.inventory.has(name) if self.inventory.synced else None

    # -- GET /endpoints ------------------------------------------------------------------------

    def names(self) -> list[str]:
        config = self._config()
        names = set(self.inventory.endpoint_names())
        if config is not None:
            names.update(config.endpoint_names())
        return sorted(names, key=natural_key)

    def list_item(self, name: str, config: PjsipConfig | None) -> ListRow:
        """One row of GET /endpoints.

        ``details`` holds the [EndpointList] fields; ``callerid``, ``aor`` and ``contacts`` are
        additions for dashboards (first AOR's [AorDetail] fields, [ContactStatusDetail] fields).
        """
        options = (config.endpoint_config(name) if config else None) or {}
        listing = self.inventory.listing(name)
        if listing is None:
            listing = {
                **from_config(options, "endpoint", name),
                "Aor": options.get("aors", ""),
                "Auths": options.get("auth", ""),
                "OutboundAuths": options.get("outbound_auth", ""),
            }
        device_state = self.inventory.device_state(name)
        detail = self.inventory.detail(name)
        callerid = detail.endpoint.get("Callerid") if detail else options.get("callerid")
        aor = detail.aors[0] if detail and detail.aors else self.inventory.listed_aor(name)
        select = self.fields.select
        return {
            "extension": name,
            "exists_in_config": self._in_config(name, config),
            "in_asterisk": self._in_asterisk(name),
            "status": status_of(device_state),
            "flapping": self.flapping(name),
            "details": select("EndpointList", {**listing, "DeviceState": device_state}),
            "callerid": callerid,
            "aor": select("AorDetail", aor) if aor else None,
            "contacts": [select("ContactStatusDetail", c) for c in self.inventory.contacts(name)],
        }

    def list_endpoints(self) -> EndpointListBody:
        config = self._config()
        items = [self.list_item(name, config) for name in self.names()]
        return {**self.envelope(), "endpoints": items}

    def row(self, name: str) -> ListRow | None:
        """The current row of one endpoint, or None when neither side knows it."""
        return self.list_item(name, self._config()) if self.known(name) else None

    def filter_list(
        self, body: EndpointListBody, status: str | None = None, q: str | None = None
    ) -> EndpointListBody:
        """``body`` (a built list) narrowed to one status and/or a search string."""
        items = body["endpoints"]
        if status:
            items = [item for item in items if item["status"] == status]
        if q:
            items = [item for item in items if self._matches(item, q)]
        return {**body, "endpoints": items}

    @staticmethod
    def _matches(row: ListRow, q: str) -> bool:
        needle = q.casefold()
        return needle in row["extension"].casefold() or needle in (row["callerid"] or "").casefold()

    # -- GET /endpoints/{extension} --------------------------------------------------------------

    def known(self, name: str) -> bool:
        config = self._config()
        in_config = config is not None and config.has_endpoint(name)
        return in_config or self.inventory.has(name)

    async def endpoint(self, name: str) -> EndpointBody | None:
        if not self.known(name):
            return None
        detail = self.inventory.detail(name)
        # Only ask a session that answers: a quiet (hung) Asterisk would hold every request for
        # the whole timeout; what the file and the lists say is shown at once instead.
        if detail is None and self.inventory.has(name) and self.session.answering:
            detail = await self.inventory.fetch_detail(name)
        config = self._config()
        sections = (
            self._details_from_ami(name, detail)
            if detail is not None
            else self._details_from_config(name, config)
        )
        return {
            **self.envelope(),
            "extension": name,
            "exists_in_config": self._in_config(name, config),
            "in_asterisk": self._in_asterisk(name),
            "flapping": self.flapping(name),
            "details": sections,
        }

    def _sections(
        self,
        endpoint: StringMap,
        auths: list[StringMap],
        outbound: list[StringMap],
        aors: list[StringMap],
        contacts: list[StringMap],
    ) -> DetailSections:
        return {
            "endpoint": endpoint,
            "auth": first(auths),
            "auths": auths,
            "aor": first(aors),
            "aors": aors,
            "outbound_auth": first(outbound),
            "outbound_auths": outbound,
            "contacts": contacts,
        }

    def _details_from_ami(self, name: str, detail: EndpointDetail) -> DetailSections:
        select = self.fields.select
        endpoint = {**detail.endpoint, "DeviceState": self.inventory.device_state(name)}
        return self._sections(
            select("EndpointDetail", endpoint),
            [select("AuthDetail", a) for a in detail.auths],
            [select("AuthDetail", a) for a in detail.outbound_auths],
            [select("AorDetail", a) for a in detail.aors],
            [select("ContactStatusDetail", c) for c in detail.contacts],
        )

    def _details_from_config(self, name: str, config: PjsipConfig | None) -> DetailSections:
        options = (config.endpoint_config(name) if config else None) or {}
        endpoint = {
            **from_config(options, "endpoint", name),
            "DeviceState": self.inventory.device_state(name),
        }
        return self._sections(
            self.fields.select("EndpointDetail", endpoint),
            self._config_objects(config, "auth", options.get("auth"), "AuthDetail"),
            self._config_objects(config, "auth", options.get("outbound_auth"), "AuthDetail"),
            self._config_objects(config, "aor", options.get("aors"), "AorDetail"),
            [],
        )

    def _config_objects(
        self, config: PjsipConfig | None, kind: str, names: str | None, event: str
    ) -> list[StringMap]:
        if config is None:
            return []
        found = []
        for name in split_names(names):
            options = config.auth(name) if kind == "auth" else config.aor(name)
            if options is not None:
                found.append(self.fields.select(event, from_config(options, kind, name)))
        return found

    # -- GET /endpoints?format=csv ----------------------------------------------------------------

    def export_rows(self, *, passwords: bool) -> list[dict[str, str]]:
        """Every endpoint of the files in the import's columns (passwords only when asked)."""
        config = self._config()
        if config is None:
            raise ConfigUnavailable(self.store.view.error or "pjsip.conf not loaded")
        endpoints = config.objects("endpoint")
        rows = []
        for name in sorted(endpoints, key=natural_key):
            options = endpoints[name].options
            auth = config.auth(next(iter(split_names(options.get("auth"))), "")) or {}
            aor = config.aor(next(iter(split_names(options.get("aors"))), "")) or {}
            rows.append(
                {
                    "extension": name,
                    "password": auth.get("password", "") if passwords else "",
                    "context": options.get("context", ""),
                    "callerid": options.get("callerid", ""),
                    "codecs": "|".join(split_names(options.get("allow"))),
                    "transport": options.get("transport", ""),
                    "templates": "|".join(endpoints[name].section.parents),
                    "max_contacts": aor.get("max_contacts", ""),
                }
            )
        return rows

    # -- GET /endpoints/{extension}/config -------------------------------------------------------

    def endpoint_config(self, name: str) -> EndpointConfigBody | None:
        view = self.store.view
        config = view.config
        if config is None:
            raise ConfigUnavailable(view.error or "pjsip.conf not loaded")
        options = config.endpoint_config(name)
        if options is None:
            return None
        own = view.check.of("endpoint", name) if view.check else None
        return {
            **self.envelope(),
            "extension": name,
            "config": options,
            "shown": shown_options("endpoint", options),
            "loadable": own.loadable if own else True,
            "location": own.location if own else "",
            "problems": [
                problem_body(check, problem)
                for check in self._object_checks(view.check, options, own)
                for problem in check.problems
            ],
        }

    @staticmethod
    def _object_checks(
        checks: ConfigCheck | None, options: Mapping[str, str], own: ObjectCheck | None
    ) -> list[ObjectCheck]:
        """The endpoint's own check and those of the auths and AORs it names."""
        if checks is None:
            return []
        found = [own] if own else []
        for kind, names in (
            ("auth", options.get("auth")),
            ("auth", options.get("outbound_auth")),
            ("aor", options.get("aors")),
        ):
            found += [c for n in split_names(names) if (c := checks.of(kind, n)) is not None]
        return found
