"""What a client may ask of the write API: create, patch, import rows. Shapes only; every value is
checked against Asterisk's option table by the planner before anything is written."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# One option value: text (numbers and booleans are written as Asterisk spells them), a list for
# options that take several lines or a comma list (allow, set_var, match …), null to remove.
OptionValue = str | int | bool | list[str] | None
Name = Annotated[str, StringConstraints(min_length=1, max_length=79, pattern=r"^[^\s\[\]();,]+$")]
MAX_OPTIONS = 200


def option_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class ObjectOptions(BaseModel):
    """Free options per object of the extension, by pjsip.conf name (``direct_media``)."""

    model_config = ConfigDict(extra="forbid")
    endpoint: dict[str, OptionValue] = Field(default_factory=dict, max_length=MAX_OPTIONS)
    auth: dict[str, OptionValue] = Field(default_factory=dict, max_length=MAX_OPTIONS)
    aor: dict[str, OptionValue] = Field(default_factory=dict, max_length=MAX_OPTIONS)


class CreateEndpoint(BaseModel):
    """A new extension: its endpoint, auth (userpass) and AOR, in the managed include file."""

    model_config = ConfigDict(extra="forbid")
    extension: Name = Field(description="the endpoint id, also the auth's username")
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="generated (and returned once) when absent",
    )
    context: str | None = Field(default=None, max_length=79)
    callerid: str | None = Field(default=None, max_length=160, examples=['"Alice" <101>'])
    codecs: list[str] | None = Field(
        default=None, max_length=48, description="in order of preference, e.g. [g722, ulaw]"
    )
    transport: str | None = Field(default=None, max_length=79)
    templates: list[Name] = Field(
        default_factory=list,
        max_length=10,
        description="templates to inherit from; each goes to the section of its type",
    )
    max_contacts: int | None = Field(default=None, ge=1, le=100)
    options: ObjectOptions = Field(default_factory=ObjectOptions)

    @field_validator("password")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or value != value.strip()):
            raise ValueError("must be printable, without leading or trailing white space")
        return value


class PatchEndpoint(BaseModel):
    """A merge-patch per object: a value sets the option, null removes it (the template's or
    Asterisk's default applies again)."""

    model_config = ConfigDict(extra="forbid")
    endpoint: dict[str, OptionValue] = Field(default_factory=dict, max_length=MAX_OPTIONS)
    auth: dict[str, OptionValue] = Field(default_factory=dict, max_length=MAX_OPTIONS)
    aor: dict[str, OptionValue] = Field(default_factory=dict, max_length=MAX_OPTIONS)

    def objects(self) -> dict[str, dict[str, OptionValue]]:
        return {"endpoint": self.endpoint, "auth": self.auth, "aor": self.aor}

    def is_empty(self) -> bool:
        return not (self.endpoint or self.auth or self.aor)


def plain(value: Any) -> Any:
    """A request value as the planner takes it (pydantic models to dicts)."""
    return value.model_dump() if isinstance(value, BaseModel) else value
