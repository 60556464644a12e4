"""skinretouch: find skin blemishes and remove them while keeping skin texture."""

# The one place the version is written: pyproject.toml reads it (``dynamic = ["version"]``), so
# start-up needs no importlib.metadata look-up through every installed distribution.
__version__ = "0.1.0"

__all__ = ["__version__"]
