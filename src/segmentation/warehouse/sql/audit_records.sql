-- Recorded audits and the fingerprints of what they checked (segmentation.control; tables
-- in control.sql). Schemas are filled in by psycopg.sql; values are bound.

-- name: delete_old
delete from {control}.audits
where audited_at < now() - %(retention)s::interval;

-- name: insert_audit
insert into {control}.audits (run_id, as_of, global_failures, quarantined, failed_accounts)
values (
    %(run_id)s, %(as_of)s, %(global_failures)s, %(quarantined)s, %(failed_accounts)s
)
returning audit_id;

-- name: insert_fingerprint
insert into {control}.audit_fingerprints
(audit_id, part, account_id, item_key, row_count, content_hash)
values (%(audit_id)s, %(part)s, %(account_id)s, %(item_key)s, %(row_count)s, %(content_hash)s);

-- name: audit
select
    run_id,
    as_of,
    audited_at,
    global_failures,
    quarantined,
    failed_accounts
from {control}.audits
where audit_id = %(audit_id)s;

-- name: latest
-- The latest audit (`segments accept` releases only what it quarantined).
select max(audit_id) from {control}.audits;

-- name: fingerprint
select
    part,
    account_id,
    item_key,
    row_count,
    content_hash
from {control}.audit_fingerprints
where audit_id = %(audit_id)s;
