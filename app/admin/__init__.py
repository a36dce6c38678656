"""Administration: organisations, sites, accounts and the audit log."""
