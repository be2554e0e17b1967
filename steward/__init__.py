"""Steward: metadata, lineage and governance service."""

from steward.celery import app as celery_app

__all__ = ["celery_app"]
