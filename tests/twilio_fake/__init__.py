"""Local Twilio-compatible HTTP server for tests."""

from .server import FakeTwilio

__all__ = ["FakeTwilio"]
