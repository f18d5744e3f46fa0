"""Reading pjsip.conf the way Asterisk does."""

from ispbx.pjsip.model import PjsipConfig, PjsipConfigError, ResolvedObject, Section
from ispbx.pjsip.parser import parse_file, parse_text

__all__ = [
    "PjsipConfig",
    "PjsipConfigError",
    "ResolvedObject",
    "Section",
    "parse_file",
    "parse_text",
]
