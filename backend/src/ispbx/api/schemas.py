"""Response models: what /docs shows. ``details`` sections are string maps (AMI fields, lower-cased,
as selected by pjsip_detail.ini)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

StringMap = dict[str, str]


class Root(BaseModel):
    message: str = Field(examples=["ISPBX Manager API"])
    version: str


class AmiHealth(BaseModel):
    connected: bool
    host: str
    port: int
    last_error: str | None
    since: datetime


class ConfigHealth(BaseModel):
    path: str
    loaded: bool = Field(
        description="a good parse of pjsip.conf is in use (possibly the last good one)"
    )
    error: str | None = Field(description="why the latest read of pjsip.conf failed (file:line)")
    warnings: list[str] = Field(description="lines Asterisk would skip")


class InventoryHealth(BaseModel):
    synced: bool
    endpoints: int
    sync_seconds: float | None
    prefetch_seconds: float | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    pbx: str = Field(description="the id of the Asterisk server these figures are about")
    ami: AmiHealth
    config: ConfigHealth
    inventory: InventoryHealth


class Envelope(BaseModel):
    status: Literal["success"] = "success"
    ami_connected: bool
    synced: bool = Field(
        description="Asterisk's lists were taken at least once; false: never synced, so device "
        "states and contacts are unknown (not stale)"
    )
    stale_since: datetime | None = Field(
        description="set while AMI is down after a sync: the data is the last known state, as of "
        "then; null while connected and when never synced"
    )
    config_error: str | None = Field(description="set while pjsip.conf has no good parse")


class Presence(BaseModel):
    exists_in_config: bool | None = Field(description="null while pjsip.conf has no good parse")
    in_asterisk: bool | None = Field(description="null before the first sync with Asterisk")


class EndpointSummary(Presence):
    extension: str
    status: Literal["online", "offline"] = Field(description="from the device state alone")
    details: StringMap = Field(description="[EndpointList] fields of pjsip_detail.ini")
    callerid: str | None = Field(description="caller ID (Asterisk's, else pjsip.conf's)")
    aor: StringMap | None = Field(description="the first AOR's [AorDetail] fields, once fetched")
    contacts: list[StringMap] = Field(description="[ContactStatusDetail] fields per contact")


class EndpointList(Envelope):
    endpoints: list[EndpointSummary]


class EndpointDetails(BaseModel):
    endpoint: StringMap = Field(description="[EndpointDetail] fields")
    auth: StringMap | None = Field(description="the first inbound auth ([AuthDetail] fields)")
    auths: list[StringMap] = Field(description="every inbound auth, in the endpoint's order")
    aor: StringMap | None = Field(description="the first AOR ([AorDetail] fields)")
    aors: list[StringMap] = Field(description="every AOR")
    outbound_auth: StringMap | None = Field(description="the first outbound auth (trunks)")
    outbound_auths: list[StringMap]
    contacts: list[StringMap] = Field(description="[ContactStatusDetail] fields per contact")


class Endpoint(Envelope, Presence):
    extension: str
    details: EndpointDetails


class EndpointConfig(Envelope):
    extension: str
    config: StringMap = Field(description="the endpoint section's effective options")


class ErrorDetail(BaseModel):
    detail: str
