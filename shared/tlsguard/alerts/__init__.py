"""Alerts: the one path from a run's results to a person (deduplicated, reminded, digested)."""
