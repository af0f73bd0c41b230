"""fundmodel: risk and financing model of a state-backed critical raw-materials fund."""

from ._version import __version__

__all__ = ["__version__"]
