"""The demo handlers, served by the sandbox when the project has no handlers of its own.

`router` holds every demo module's routes, so `[server] handlers = ["callback.demo"]` loads the
whole demo; each module (`callback.demo.chat`, ...) has its own `router` too. Your project's
handlers go in its own `handlers/` package (or any module named in `[server] handlers`): the
demo is never loaded when the project has some.
"""

from callback.demo import assistant, cards, chat, fallback, menu
from callback.router import Router

router = Router("demo")
for _module in (assistant, cards, chat, menu, fallback):
    router.include(_module.router)

__all__ = ["router"]
