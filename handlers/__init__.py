"""This deployment's demo handlers, served by the sandbox when a project has none of its own.

In the repository they live here, in the top-level `handlers/`; the installed distribution
ships them as `callback.demo` (`callback/demo` links to this folder) and never as a top-level
`handlers` package, so a user's own `handlers/` always wins.

`router` holds every demo module's routes, so `[server] handlers = ["callback.demo"]` loads the
whole demo; each module (`callback.demo.chat`, ...) has its own `router` too. Your project's
handlers go in its own `handlers/` package (or any module named in `[server] handlers`): the
demo is never loaded when the project has some.
"""

from callback.router import Router

from . import assistant, cards, chat, fallback, menu

router = Router("demo")
for _module in (assistant, cards, chat, menu, fallback):
    router.include(_module.router)

__all__ = ["router"]
