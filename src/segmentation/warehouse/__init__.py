"""The warehouse: connections, DDL, security, the run lease, the dbt runner and the SQL files.

Knows nothing of the definition language.
"""
