"""The package's version, read from the installed distribution's metadata (one source of truth)."""
from __future__ import annotations

from importlib import metadata

DIST_NAME = "spinn-utils"  # the distribution name in pyproject.toml


def installed_version(dist: str = DIST_NAME) -> str | None:
    """``dist``'s installed version, or None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# A source checkout used without ``pip install`` has no metadata: say so instead of guessing.
__version__ = installed_version() or "0+unknown"
