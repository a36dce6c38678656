"""Shared foundations: time, database helpers, audit log, roles. Imports nothing above it."""
