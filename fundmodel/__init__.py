"""fundmodel: risk and financing model of a state-backed critical raw-materials fund."""

__version__ = "0.1.0"
