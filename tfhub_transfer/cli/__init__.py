"""`tfhub-transfer`: the command line over the same functions as the Python API."""

from tfhub_transfer.cli.main import main

__all__ = ["main"]
