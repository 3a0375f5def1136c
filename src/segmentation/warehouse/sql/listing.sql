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

-- name: segment_status
-- `segments status` / `segments published`: per segment what Broadcast sees and, for a
-- stale one, for how many days. days_stale: the account's latest as-of date (the newest one
-- history recorded or serving shows for any of its segments) minus the as-of date of the
-- membership the segment shows; for a segment that never published (as_of NULL), counted
-- from the day before its first recorded date, so a first-day quarantine is 1 either way.
-- 0 when not stale; NULL when nothing dates it.
with account_dates as (
    select
        z.account_id,
        z.as_of
    from {history}.segment_sizes as z
    union all
    select
        s.account_id,
        s.as_of
    from {serving}.segments as s
    where s.as_of is not null
    union all
    -- a failed account's run dates it too (status 'failed' rows of that day)
    select
        l.account_id,
        l.as_of
    from {serving}.publish_log as l
    where l.account_id is not null
),

latest as (
    select
        account_id,
        max(as_of) as as_of
    from account_dates
    group by account_id
),

first_recorded as (
    select
        account_id,
        segment_key,
        min(as_of) as as_of
    from {history}.segment_sizes
    group by account_id, segment_key
)

select
    s.account_id,
    s.segment_key,
    s.member_count,
    s.as_of,
    s.published_at,
    s.stale,
    s.stale_reason,
    case
        when not s.stale then 0
        when s.as_of is not null then l.as_of - s.as_of
        else l.as_of - f.as_of + 1
    end as days_stale
from {serving}.segments as s
left join latest as l on s.account_id = l.account_id
left join first_recorded as f
    on s.account_id = f.account_id and s.segment_key = f.segment_key
where cast(%(account)s as text) is null or s.account_id = %(account)s
order by s.account_id, s.segment_key;
