"""Delivery: WeCom's 5-second budget, the durable inbox and outbox, and the threads that run them.

`runner` decides what runs where and records what came of it; `attempt` says until when WeCom
listens; `budget` waits out an attempt's time; `speeds` picks the routes that may run on the
request thread; `upkeep` keeps the promises off the request path (leases, recovery, the outbox,
purging, queue workers); `workers` owns this process's threads; `outbox` sends what must be
pushed; `tasks` hands work to Celery when `queue = "celery"`.
"""

from callback.delivery.runner import Delivery, TaskQueue

__all__ = ["Delivery", "TaskQueue"]
