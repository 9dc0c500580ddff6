"""Loads handler modules (each with a module-level `router = Router()`) into one root router.

Which modules: `[server] handlers` when set; else every module of the project's own `handlers/`
package (the project is the current directory); else, in sandbox mode only, the demo
(`callback.demo`). The project's directory goes first on `sys.path`, so its code wins over any
installed package of the same name, and a module of that name imported earlier from elsewhere is
imported again from the project. `Loaded` says which modules were loaded, from which files, and
why those.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from callback.errors import ConfigError
from callback.router import Router

ENTRY_POINT_GROUP = "wecom_callback.handlers"
DEFAULT_PACKAGE = "handlers"
DEMO = "callback.demo"
NONE = "none, so every callback gets an empty 200"


@dataclass(frozen=True)
class Loaded:
    """A root router and where its routes came from."""

    router: Router
    #: (module name, its file) in load order; entry points' modules after the chosen ones.
    modules: tuple[tuple[str, str], ...]
    #: Why these modules: "[server] handlers", "the modules of PROJECT/handlers", ...
    reason: str

    def describe(self) -> list[str]:
        """Lines for `wecom routes`, the server's log and the pytest fixture."""
        head = f"handler modules ({self.reason}):"
        if not self.modules:
            return [f"{head} {NONE}"]
        return [head, *(f"  {name}  {path}" for name, path in self.modules)]

    def summary(self) -> str:
        """The same on one line, for logs."""
        names = ", ".join(f"{name} ({path})" for name, path in self.modules)
        return f"handler modules ({self.reason}): {names or NONE}"


def project_dir(project: str | Path | None = None) -> Path:
    """The project's directory: `project`, else the current directory."""
    return Path(project if project is not None else os.getcwd()).resolve()


def default_modules(package: str = DEFAULT_PACKAGE, project: str | Path | None = None) -> list[str]:
    """The modules of the project's handlers/ package, alphabetically (none if it has none)."""
    directory = project_dir(project) / package
    if not directory.is_dir():
        return []
    return sorted(
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules([str(directory)])
        if not info.name.startswith("_")
    )


def choose(
    modules: Sequence[str] | None, *, sandbox: bool, project: str | Path | None = None
) -> tuple[list[str], str]:
    """The handler modules to load, and why those (see the module docstring)."""
    if modules is not None:
        return list(modules), "[server] handlers"
    where = project_dir(project) / DEFAULT_PACKAGE
    found = default_modules(project=project)
    if found:
        return found, f"the modules of {where}"
    if sandbox:
        return [DEMO], f"the sandbox's demo: there is no {where}"
    return [], f"[server] handlers is not set and there is no {where}"


def _from_project(module: ModuleType, project: Path) -> bool:
    places = [getattr(module, "__file__", None), *getattr(module, "__path__", [])]
    return any(p and Path(p).resolve().is_relative_to(project) for p in places)


def _import(name: str, project: Path) -> ModuleType:
    """Import `name`; when the project has its top-level package or module, from there: the
    project's directory goes first on sys.path, and a module of that name imported earlier from
    elsewhere (an installed package, another project) is forgotten first."""
    top = name.partition(".")[0]
    ours = (project / top).is_dir() or (project / f"{top}.py").is_file()
    if not ours or top == __name__.partition(".")[0]:  # never this framework's own package
        return importlib.import_module(name)
    sys.path[:] = [str(project), *(p for p in sys.path if p != str(project))]
    loaded = sys.modules.get(top)
    if loaded is not None and not _from_project(loaded, project):
        for key in [k for k in sys.modules if k == top or k.startswith(f"{top}.")]:
            del sys.modules[key]
    importlib.invalidate_caches()
    return importlib.import_module(name)


def module_router(name: str, project: str | Path | None = None) -> Router:
    """Import `name` and return its `router`, or raise ConfigError saying what is wrong."""
    router = _module_router(name, project_dir(project))[1]
    if router is None:
        raise ConfigError(
            f"server.handlers: module {name!r} has no module-level `router = Router()`"
        )
    return router


def _module_router(name: str, project: Path) -> tuple[ModuleType, Router | None]:
    try:
        module = _import(name, project)
    except ImportError as exc:
        raise ConfigError(
            f"server.handlers: cannot import {name!r} ({exc}); check the module name, and that "
            f"it is in {project} (the project's directory, first on sys.path) or installed"
        ) from exc
    router = getattr(module, "router", None)
    return module, router if isinstance(router, Router) else None


def _routers(name: str, project: Path) -> list[tuple[str, Router, str]]:
    """(module, router, file) for `name`; a package without a `router`: for each of its modules
    (alphabetically, skipping names that start with `_`)."""
    module, router = _module_router(name, project)
    if router is not None:
        return [(name, router, str(getattr(module, "__file__", None) or "(no file)"))]
    paths = list(getattr(module, "__path__", []))
    subs = sorted(i.name for i in pkgutil.iter_modules(paths) if not i.name.startswith("_"))
    if not subs:
        raise ConfigError(
            f"server.handlers: module {name!r} has no module-level `router = Router()`"
        )
    return [found for sub in subs for found in _routers(f"{name}.{sub}", project)]


def load_modules(
    modules: Iterable[str],
    reason: str,
    *,
    use_entry_points: bool = True,
    project: str | Path | None = None,
) -> Loaded:
    """A root router including each module's router in priority order, then entry-point ones."""
    where = project_dir(project)
    root = Router("root")
    seen: set[str] = set()
    loaded: list[tuple[str, str]] = []
    for wanted in modules:
        for name, router, path in _routers(wanted, where):
            if name not in seen:
                seen.add(name)
                root.include(router)
                loaded.append((name, path))
    if use_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.module in seen:
                continue
            seen.add(ep.module)
            target = ep.load()
            found = target if isinstance(target, Router) else getattr(target, "router", None)
            if not isinstance(found, Router):
                raise ConfigError(
                    f"entry point {ep.name!r} ({ENTRY_POINT_GROUP}) gives no Router: {ep.value}"
                )
            root.include(found)
            module = sys.modules.get(ep.module)
            path = getattr(module, "__file__", None) or "(no file)"
            loaded.append((ep.module, f"{path} (entry point {ep.name!r})"))
    return Loaded(root, tuple(loaded), reason)


def load_for(
    modules: Sequence[str] | None, *, sandbox: bool, project: str | Path | None = None
) -> Loaded:
    """The handlers a server with these settings runs (see `choose`), loaded."""
    names, reason = choose(modules, sandbox=sandbox, project=project)
    return load_modules(names, reason, project=project)


def load(
    modules: Iterable[str] | None,
    *,
    use_entry_points: bool = True,
    project: str | Path | None = None,
) -> Router:
    """The root router of `modules` (None: the project's handlers/ package), then entry points."""
    names = default_modules(project=project) if modules is None else list(modules)
    return load_modules(names, "given", use_entry_points=use_entry_points, project=project).router
