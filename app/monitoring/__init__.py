"""The platform watching itself: health checks held too long become faults told to a technical contact."""
