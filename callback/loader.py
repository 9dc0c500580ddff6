"""Loads handler modules (each with a module-level `router = Router()`) into one root router."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from importlib.metadata import entry_points

from callback.errors import ConfigError
from callback.router import Router

ENTRY_POINT_GROUP = "wecom_callback.handlers"
DEFAULT_PACKAGE = "handlers"


def default_modules(package: str = DEFAULT_PACKAGE) -> list[str]:
    """The modules of the deployment's handlers/ package, alphabetically (none if absent)."""
    try:
        pkg = importlib.import_module(package)
    except ModuleNotFoundError:
        return []
    paths = getattr(pkg, "__path__", [])
    return sorted(
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules(paths)
        if not info.name.startswith("_")
    )


def module_router(name: str) -> Router:
    """Import `name` and return its `router`, or raise ConfigError saying what is wrong."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(
            f"server.handlers: cannot import {name!r} ({exc}); check the module name and sys.path"
        ) from exc
    router = getattr(module, "router", None)
    if not isinstance(router, Router):
        raise ConfigError(
            f"server.handlers: module {name!r} has no module-level `router = Router()`"
        )
    return router


def load(modules: Iterable[str] | None, *, use_entry_points: bool = True) -> Router:
    """A root router including each module's router in priority order, then entry-point ones."""
    root = Router("root")
    seen: set[str] = set()
    for name in default_modules() if modules is None else modules:
        if name not in seen:
            seen.add(name)
            root.include(module_router(name))
    if use_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.module in seen:
                continue
            seen.add(ep.module)
            target = ep.load()
            router = target if isinstance(target, Router) else getattr(target, "router", None)
            if not isinstance(router, Router):
                raise ConfigError(
                    f"entry point {ep.name!r} ({ENTRY_POINT_GROUP}) gives no Router: {ep.value}"
                )
            root.include(router)
    return root
