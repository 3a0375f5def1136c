-- The audit's expected set: every enabled (account, segment) the definitions declare, as
-- int_segment_scopes expanded them (templates per account, package gating, overrides).
-- A declared segment without an enabled catalogue row then fails suite membership_integrity.
-- The schema name is filled in by psycopg.sql.

drop table if exists {audit}.audit_expected_segments;

create table {audit}.audit_expected_segments as
select
    account_id,
    segment_key
from {audit}.int_segment_scopes
where enabled;
