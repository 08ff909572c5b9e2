"""danlu 丹炉 — a self-hosted AI application platform.

The public Python API is re-exported here; everything else is internal.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "create_app", "load_settings"]


def __getattr__(name: str) -> object:
    # Lazy, so `danlu --version` does not import FastAPI and the model stack.
    if name == "create_app":
        from danlu.api.app import create_app

        return create_app
    if name == "load_settings":
        from danlu.core.settings import load_settings

        return load_settings
    raise AttributeError(name)
