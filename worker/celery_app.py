"""The workers' Celery application (``celery -A worker.celery_app``), configured by app/core/celery_client.py."""

from __future__ import annotations

from app.core.celery_client import create_celery
from app.core.config import get_settings

celery_app = create_celery(get_settings())
