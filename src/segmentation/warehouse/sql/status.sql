-- `segments status`: one row per staged account with what an operator checks first: the
-- timezone its 08:00 runs in (and whether it is a fallback for an unknown zone), and what
-- Broadcast sees of it now (segments, stale ones, the newest as-of date and publish time).
-- Schema names are filled in by psycopg.sql.

select
    a.account_id,
    a.package,
    a.timezone,
    a.timezone_is_valid,
    a.timezone_raw,
    count(s.segment_key) as segments,
    count(s.segment_key) filter (where s.stale) as stale_segments,
    coalesce(sum(s.member_count), 0) as memberships,
    max(s.as_of) as latest_as_of,
    max(s.published_at) as latest_published_at
from {staging}.stg_crm__accounts as a
left join {serving}.segments as s
    on a.account_id = s.account_id
group by a.account_id, a.package, a.timezone, a.timezone_is_valid, a.timezone_raw
order by a.account_id
