"""Payments ledger, monthly statements and the experiment's indicators."""
