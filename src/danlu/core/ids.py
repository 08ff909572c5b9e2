"""Identifiers: short, sortable by creation time, and typed by prefix."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """``prefix_`` + 12 hex digits of milliseconds + 12 random hex digits."""
    millis = int(time.time() * 1000)
    return f"{prefix}_{millis:012x}{os.urandom(6).hex()}"
