"""Delivery: WeCom's 5-second budget, the durable inbox and outbox, and the threads that run them.

`runner` decides what runs where and records what came of it; `budget` waits out an attempt's
time; `workers` owns this process's threads and leases; `outbox` sends what must be pushed;
`tasks` hands work to Celery when `queue = "celery"`.
"""

from callback.delivery.runner import Delivery, TaskQueue

__all__ = ["Delivery", "TaskQueue"]
