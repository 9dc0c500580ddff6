"""WSGI entry point: `gunicorn wsgi:app` (config from $WECOM_CONFIG or ./config.toml).

Without a logging configuration (gunicorn's --log-config...), the application logs at INFO to
standard error: the handler modules it loaded, and sandbox mode when there is no config.
"""

import logging

from callback.app import create_app

if not logging.getLogger().handlers:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

app = create_app()
