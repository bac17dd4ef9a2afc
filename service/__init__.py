"""The comment moderation web service: ``gunicorn 'service:create_app()'``."""

from service.app import create_app

__all__ = ["create_app"]
