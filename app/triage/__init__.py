"""Triage: alerts raised from answers, no-response and professionals' concerns, and nurse tasks."""
