"""The care circuit: organisations, sites, professionals, patients and care teams."""
