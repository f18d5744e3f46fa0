"""Response models: what /docs shows. ``details`` sections are string maps (AMI fields, lower-cased,
as selected by pjsip_detail.ini)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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


class DatabaseHealth(BaseModel):
    state: Literal["ok", "unavailable"]
    since: str
    last_error: str | None
    queued: int = Field(description="history events waiting to be written")
    dropped: int = Field(description="events dropped because the queue was full")
    written: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    pbx: str = Field(description="the id of the Asterisk server these figures are about")
    ami: AmiHealth
    config: ConfigHealth
    inventory: InventoryHealth
    database: DatabaseHealth


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
    flapping: bool = Field(
        description="registration or reachability changed ISPBX_FLAP_CHANGES times within "
        "ISPBX_FLAP_MINUTES, and has not been quiet that long since"
    )
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
    flapping: bool = Field(description="as in the list row")
    details: EndpointDetails


class ConfigProblem(BaseModel):
    object_type: str = Field(description="endpoint, auth or aor")
    object: str = Field(description="the object's id")
    field: str = Field(description="the option (or 'type', or empty for the whole object)")
    message: str
    refused: bool = Field(description="Asterisk refuses to create the object because of it")
    location: str = Field(description="file:line of the object's section")


class EndpointConfig(Envelope):
    extension: str
    config: StringMap = Field(description="the endpoint section's effective options")
    shown: StringMap = Field(
        description="the same options as Asterisk shows them (pjsip show endpoint / AMI): "
        "caller ID as Asterisk parses it, booleans as true/false, codecs as (a|b)"
    )
    loadable: bool = Field(
        description="Asterisk creates this endpoint from the file (false: it refuses it, or "
        "loads no endpoint at all because an id repeats; see problems)"
    )
    location: str = Field(description="file:line of the endpoint's section")
    problems: list[ConfigProblem] = Field(
        description="what Asterisk refuses or warns about, for the endpoint and its auths/AORs"
    )


class HistoryEventOut(BaseModel):
    id: int
    pbx: str
    endpoint: str | None = Field(description="null for PBX-wide events (AMI, config)")
    kind: str = Field(
        description="registered, unregistered, reachable, unreachable, rtt, device_state, "
        "ami_connected, ami_lost, ami_hung, ami_reconnected, config_loaded, config_rejected, "
        "flapping_started, flapping_stopped"
    )
    occurred_at: str = Field(description="ISO 8601, UTC")
    data: dict[str, Any] = Field(description="contact URI, via address, user agent, RTT, …")


class HistoryPage(BaseModel):
    events: list[HistoryEventOut] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: last")


class PeriodOut(BaseModel):
    start: str
    end: str
    state: Literal["online", "unreachable", "offline", "unknown"]
    seconds: float


class AvailabilityOut(BaseModel):
    pbx: str
    endpoint: str
    since: str
    until: str
    window_seconds: float
    online_seconds: float
    offline_seconds: float = Field(description="no contact, or every contact unreachable")
    unreachable_seconds: float = Field(description="the unreachable part of offline_seconds")
    unknown_seconds: float = Field(description="nothing recorded yet, or AMI was down")
    online_share: float | None
    offline_share: float | None
    unknown_share: float | None
    availability: float | None = Field(description="online / (online + offline)")
    periods: list[PeriodOut]


class AuditOut(BaseModel):
    id: int
    pbx: str
    occurred_at: str
    who: str
    role: str
    object_type: str
    object_id: str | None
    operation: str
    result: Literal["applied", "rejected", "rolled_back", "failed"]
    diff: str
    detail: str
    version_before: int | None
    version_after: int | None


class AuditPage(BaseModel):
    entries: list[AuditOut]
    next_cursor: str | None


class WriteResult(BaseModel):
    status: Literal["applied", "dry_run"]
    operation: Literal["create", "update", "delete", "import", "revert"]
    extensions: list[str] = Field(description="the extensions the change is about")
    diff: dict[str, str] = Field(description="a unified diff per file it changes")
    warnings: list[str] = Field(description="what Asterisk will complain about, file:line")
    password: str | None = Field(description="a generated password, shown this once")
    passwords: dict[str, str] = Field(description="generated passwords of an import")
    kept: list[str] = Field(description="auths/AORs a delete kept because others use them")
    version: int | None = Field(description="the config version this change made")
    etag: str = Field(description="the file set's ETag now (send it as If-Match next time)")
    endpoint: Endpoint | None = Field(description="the endpoint as Asterisk now has it")


class VersionOut(BaseModel):
    id: int
    pbx: str
    created_at: str
    author: str
    reason: str
    paths: list[str]
    diff: str | None = None


class VersionList(BaseModel):
    versions: list[VersionOut]
    next_cursor: str | None


class Me(BaseModel):
    role: Literal["viewer", "admin"]
    name: str = Field(description="the token's fingerprint, as the audit names it")
    can_write: bool = Field(description="may use the write API")


class OptionOut(BaseModel):
    name: str
    kind: str = Field(description="bool, integer, number, enum, codecs, reference, string …")
    default: str | None
    values: list[str] = Field(description="the allowed values of an enumeration")
    multiple: bool = Field(description="takes several values (a list in the write API)")
    synopsis: str


class OptionList(BaseModel):
    type: Literal["endpoint", "auth", "aor"]
    asterisk_version: str = Field(description="the Asterisk whose documentation the table is")
    options: list[OptionOut]
    codecs: list[str] = Field(description="codec names allow/disallow take")


class ErrorDetail(BaseModel):
    detail: str
