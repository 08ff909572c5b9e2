"""The plugin manager: built-ins first, then installed ``danlu`` entry points."""

from __future__ import annotations

import importlib

import pluggy

from danlu.core import hookspecs

BUILTIN_PLUGINS = ("danlu.gateway.providers.builtin",)


def plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager; tests build their own and register what they need."""
    manager = pluggy.PluginManager("danlu")
    manager.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        manager.load_setuptools_entrypoints("danlu")
    return manager
