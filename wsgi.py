"""WSGI entry point: `gunicorn wsgi:app` (config from $WECOM_CONFIG or ./config.toml)."""

from callback.app import create_app

app = create_app()
