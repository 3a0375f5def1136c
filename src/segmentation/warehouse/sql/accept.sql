-- `segments accept` (segmentation.steps.accept). Schemas are filled in by psycopg.sql;
-- values are bound.

-- name: segment_keys
-- The segments serving has, for "did you mean".
select
    s.account_id,
    s.segment_key
from {serving}.segments as s
order by s.account_id, s.segment_key;

-- name: run_published
-- Whether the audited run's publish happened (accept releases a segment of a published run,
-- it does not publish a run that never did).
select count(*) > 0
from {serving}.publish_log as l
where
    l.run_id = %(run_id)s
    and l.as_of = %(as_of)s
    and l.account_id = %(account_id)s
    and l.status <> 'failed';
