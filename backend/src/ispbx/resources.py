"""Files shipped inside the package: the bundled ini files, the sample pjsip.conf and the
dashboard. Read through importlib.resources, so an installed wheel finds them wherever it lives."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(*parts: str) -> Path:
    """A file or directory of the package on disk (the package is never imported from a zip)."""
    return Path(str(files("ispbx").joinpath(*parts)))


def bundled_ini() -> Path:
    return package_path("config", "pjsip_config.ini")


def bundled_detail_ini() -> Path:
    return package_path("config", "pjsip_detail.ini")


def sample_pjsip_conf() -> Path:
    return package_path("config", "pjsip.sample.conf")


def bundled_frontend() -> Path:
    """The dashboard's static files (``ispbx/ui``: in a checkout a link to the repo's frontend/)."""
    return package_path("ui")
