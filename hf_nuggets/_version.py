"""The installed version of hf-nuggets (a leaf module, so nothing imports the package root to read it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hf-nuggets")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
