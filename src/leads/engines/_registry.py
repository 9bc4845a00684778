"""Engine registration through one plugin hook, and engine configuration.

Engines — the built-in ones too — register through the ``register_engines`` hook (pluggy).
A third-party package adds an engine with an entry point in the ``leads`` group::

    [project.entry-points.leads]
    my_engine = "my_package.leads_plugin"

whose module defines ``@leads.engines.hookimpl def register_engines(register): register(...)``.

Configuration of an engine comes, later sources winning, from: the user's config
(``$LEADS_CONFIG`` or ``~/.config/leads/config.toml``, table ``[engines.NAME]``), the project's
``project.toml`` (same table), environment variables the engine documents, and explicit options.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from leads.engines._base import Engine
from leads.engines.calllog import CallLog
from leads.errors import EngineError, LeadsError

__all__ = [
    "EngineInfo",
    "engine_config",
    "engines",
    "get_engine",
    "hookimpl",
    "hookspec",
    "plugin_manager",
]

hookspec = pluggy.HookspecMarker("leads")
hookimpl = pluggy.HookimplMarker("leads")

EngineFactory = Callable[..., Engine]


@dataclass(frozen=True)
class EngineInfo:
    name: str
    factory: EngineFactory
    description: str
    requires: str | None = None  # the pip extra that provides its dependencies


class _Specs:
    @hookspec
    def register_engines(self, register: Callable[[EngineInfo], None]) -> None:
        """Register engines by calling ``register(EngineInfo(...))``."""


_manager: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    global _manager
    if _manager is None:
        manager = pluggy.PluginManager("leads")
        manager.add_hookspecs(_Specs)
        from leads.engines import _builtin

        manager.register(_builtin, name="leads.builtin")
        manager.load_setuptools_entrypoints("leads")
        _manager = manager
    return _manager


def engines() -> dict[str, EngineInfo]:
    """Every registered engine by name."""
    found: dict[str, EngineInfo] = {}

    def register(info: EngineInfo) -> None:
        found[info.name] = info

    plugin_manager().hook.register_engines(register=register)
    return found


def _user_config() -> dict[str, Any]:
    path = Path(os.environ.get("LEADS_CONFIG") or Path.home() / ".config" / "leads" / "config.toml")
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise LeadsError(f"{path}: invalid TOML: {exc}") from None


def engine_config(name: str, project_config: dict[str, Any] | None = None,
                  overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The merged configuration of engine ``name`` (user config < project config < overrides)."""
    merged: dict[str, Any] = {}
    for source in (_user_config(), project_config or {}):
        merged.update(source.get("engines", {}).get(name, {}))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return merged


def default_engine_name(project_config: dict[str, Any] | None = None) -> str:
    for source in (project_config or {}, _user_config()):
        name = source.get("engine", {}).get("default")
        if name:
            return str(name)
    return os.environ.get("LEADS_ENGINE", "classic")


def get_engine(name: str | None = None, *, log: CallLog | None = None,
               project_config: dict[str, Any] | None = None, **options: Any) -> Engine:
    """Create the named engine (default: the configured one, else ``classic``)."""
    name = name or default_engine_name(project_config)
    available = engines()
    info = available.get(name)
    if info is None:
        raise EngineError(f"unknown engine {name!r}; available: {', '.join(sorted(available))}")
    config = engine_config(name, project_config, options)
    try:
        return info.factory(log=log, **config)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("leads"):
            raise
        hint = f"pip install 'leads[{info.requires}]'" if info.requires else f"pip install {exc.name}"
        raise EngineError(f"engine {name!r} needs the package {exc.name!r}, which is not installed: {hint}") from None
    except TypeError as exc:
        raise EngineError(f"engine {name!r}: invalid configuration: {exc}") from None
