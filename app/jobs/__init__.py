"""Periodic jobs: the registry, the runner that records every run, the scheduler lease and process."""
