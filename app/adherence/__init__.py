"""Adherence: dispensings, professionals' reports, PDC and self-report, adherence findings."""
