"""The shapes of the response bodies the read model builds, mirroring ``ispbx.api.schemas``
(a unit test holds the two together). ``details`` sections are string maps of AMI fields,
lower-cased, as selected by pjsip_detail.ini."""

from __future__ import annotations

from typing import Literal, TypedDict

StringMap = dict[str, str]


class EnvelopeBody(TypedDict):
    status: Literal["success"]
    ami_connected: bool
    synced: bool
    stale_since: str | None
    config_error: str | None


class ListRow(TypedDict):
    extension: str
    exists_in_config: bool | None
    in_asterisk: bool | None
    status: Literal["online", "offline"]
    flapping: bool
    details: StringMap
    callerid: str | None
    aor: StringMap | None
    contacts: list[StringMap]


class EndpointListBody(EnvelopeBody):
    endpoints: list[ListRow]


class DetailSections(TypedDict):
    endpoint: StringMap
    auth: StringMap | None
    auths: list[StringMap]
    aor: StringMap | None
    aors: list[StringMap]
    outbound_auth: StringMap | None
    outbound_auths: list[StringMap]
    contacts: list[StringMap]


class EndpointBody(EnvelopeBody):
    extension: str
    exists_in_config: bool | None
    in_asterisk: bool | None
    flapping: bool
    details: DetailSections


class ProblemBody(TypedDict):
    object_type: str
    object: str
    field: str
    message: str
    refused: bool
    location: str


class EndpointConfigBody(EnvelopeBody):
    extension: str
    config: StringMap
    shown: StringMap
    loadable: bool
    location: str
    problems: list[ProblemBody]
