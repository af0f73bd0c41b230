"""The package version (one place: the root package, the run manifest and the engine read it)."""

__version__ = "0.1.0"
