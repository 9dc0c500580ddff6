"""The Celery worker entry point: `WECOM_CONFIG=... celery -A callback.worker worker`."""

from callback.app import load_settings
from callback.delivery.tasks import make_celery

app = make_celery(load_settings())
