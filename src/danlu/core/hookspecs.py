"""Every plugin hook danlu offers, one function each.

Built-in features register through these same hooks (see
``danlu.gateway.providers.builtin``); a third-party package does the same by
declaring an entry point in the ``danlu`` group. See docs/providers.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from danlu.core.settings import Settings
    from danlu.gateway.provider import Provider
    from danlu.gateway.registry import ProviderConfig

hookspec = pluggy.HookspecMarker("danlu")
hookimpl = pluggy.HookimplMarker("danlu")


@hookspec
def register_provider_types() -> list[type[Provider]]:  # type: ignore[empty-body]
    """Return the :class:`~danlu.gateway.provider.Provider` subclasses this plugin adds.

    Each is registered under its ``type`` attribute, which configuration files
    and the API use to name it.
    """


@hookspec
def default_provider_configs(settings: Settings) -> list[ProviderConfig]:  # type: ignore[empty-body]
    """Return providers to run with no configuration at all (the embedded models).

    Return an empty list when ``settings`` turns them off.
    """
