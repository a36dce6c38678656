"""Login, sessions, throttling and API tokens."""
