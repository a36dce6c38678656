"""REST API v1: token-authenticated JSON over the same services and access rules as the pages."""
from . import openapi, pathway, patients  # noqa: F401  (their routes register on ``bp``)
from .base import bp

__all__ = ["bp"]
