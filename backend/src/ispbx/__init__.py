"""ISPBX Manager: live view of Asterisk PJSIP extensions."""

__version__ = "0.1.0"
