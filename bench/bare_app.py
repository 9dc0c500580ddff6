"""The ceiling: a bare Flask app whose callback route answers "success" and does nothing else.

Served by bench/callback_throughput.py as `gunicorn bare_app:app` (bench/ on the Python path).
"""

from __future__ import annotations

from flask import Flask

app = Flask("bare")


@app.post("/wecom/callback/<name>")
def callback(name: str) -> str:
    """Accept any POST without reading, verifying or parsing it."""
    return "success"


@app.get("/healthz")
def healthz() -> str:
    """Readiness probe for the benchmark driver."""
    return "ok\n"
