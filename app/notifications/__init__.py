"""Transport: SMS and voice providers, outbox, webhooks."""
