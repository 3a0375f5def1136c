-- What the CLI lists (segmentation.steps.listing, pipeline.run_summary). Schemas are filled
-- in by psycopg.sql; values are bound.

-- name: run_summary
-- One row per account and segment that the run of as_of recorded in history.
select
    z.account_id,
    z.segment_key,
    z.member_count,
    z.entered,
    z.exited,
    z.stale as quarantined,
    s.stale_reason as reason
from {history}.segment_sizes as z
left join {serving}.segments as s
    on z.account_id = s.account_id and z.segment_key = s.segment_key
where z.as_of = %(as_of)s and z.run_id = %(run_id)s
order by z.account_id, z.segment_key;

-- name: segments
-- `segments ls`: what Broadcast sees per segment, with its sizes in history over the 7 days
-- that end at its published as-of date (oldest first).
select
    s.account_id,
    s.segment_key,
    s.name,
    s.owner,
    s.tags,
    s.member_count,
    s.as_of,
    s.published_at,
    s.stale,
    s.stale_reason,
    coalesce(t.dates, cast(array[] as date[])) as trend_dates,
    coalesce(t.counts, cast(array[] as integer[])) as trend_counts
from {serving}.segments as s
left join lateral (
    select
        array_agg(z.as_of order by z.as_of) as dates,
        array_agg(z.member_count order by z.as_of) as counts
    from {history}.segment_sizes as z
    where
        z.account_id = s.account_id
        and z.segment_key = s.segment_key
        and z.as_of > s.as_of - 7
        and z.as_of <= s.as_of
) as t on true
where
    (cast(%(account)s as text) is null or s.account_id = %(account)s)
    and (cast(%(tag)s as text) is null or %(tag)s = any(s.tags))
order by s.account_id, s.segment_key;

-- name: published_segment
-- One published segment (or none): whether serving has it, and since when.
select
    s.member_count,
    s.as_of,
    s.published_at,
    s.stale,
    s.stale_reason
from {serving}.segments as s
where s.account_id = %(account_id)s and s.segment_key = %(segment_key)s;

-- name: accounts
-- The accounts serving has segments for (for "did you mean").
select distinct s.account_id
from {serving}.segments as s
order by s.account_id;
