"""The `hf-nuggets` command line: one module per command, each a thin layer over the library."""

from .main import main

__all__ = ["main"]
