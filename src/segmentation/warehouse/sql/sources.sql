-- The raw tables the ELT lands (crm_raw) and whether each holds a row, read before
-- `dbt source freshness`: dbt fails on an empty source, and an empty optional one (no tickets
-- yet) must not stop a tenant's run (steps.pipeline.check_sources).

-- name: raw_tables
select table_name
from information_schema.tables
where table_schema = %(schema)s and table_type = 'BASE TABLE'
order by table_name;

-- name: has_rows
select exists(select 1 from {raw}.{table}) as has_rows;
