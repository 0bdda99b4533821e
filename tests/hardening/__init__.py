"""Hostile input never crashes or stalls tlsguard (issue 14)."""
