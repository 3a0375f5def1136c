"""Deterministic demo CRM data (placeholder until the generator lands)."""
