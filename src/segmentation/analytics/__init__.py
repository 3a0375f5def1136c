"""Numeric analytics on arrays: no database, no settings, no dbt (steps/ feeds and stores them)."""
