"""Helpers shared by the stages: atomic file writes and secret redaction (each written once, here)."""
