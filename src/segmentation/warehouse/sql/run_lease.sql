-- The run lease on the candidate (segmentation.control; tables in control.sql). Schemas are
-- filled in by psycopg.sql; values are bound.

-- name: ensure_row
insert into {control}.run_lease (lease) values ('candidate')
on conflict (lease) do nothing;

-- name: current
-- step_alive: the holder's keep-alive session (application_name prefix || token) still runs.
-- {lock} is empty, or `for update of l` when the caller is about to change the lease.
select
    l.run_id,
    l.as_of,
    l.acquired_at,
    l.expires_at,
    l.holder,
    l.session_pid is not null as attached,
    l.session_pid is not null and exists (
        select 1 from pg_stat_activity as a
        where a.pid = l.session_pid and a.application_name = %(prefix)s || l.session_token
    ) as step_alive,
    l.expires_at < now() as expired
from {control}.run_lease as l
where l.lease = 'candidate'
{lock};

-- name: acquire
update {control}.run_lease set
    run_id = %(run_id)s,
    as_of = %(as_of)s,
    acquired_at = case when %(mine)s then acquired_at else now() end,
    renewed_at = now(),
    expires_at = now() + %(ttl)s::interval,
    holder = %(holder)s,
    session_pid = pg_backend_pid(),
    session_token = %(token)s
where lease = 'candidate';

-- name: detach
update {control}.run_lease set
    renewed_at = now(),
    expires_at = now() + %(ttl)s::interval,
    session_pid = null,
    session_token = null
where run_id = %(run_id)s and session_token = %(token)s;

-- name: release
update {control}.run_lease set
    run_id = null,
    as_of = null,
    acquired_at = null,
    renewed_at = now(),
    expires_at = null,
    holder = null,
    session_pid = null,
    session_token = null
where run_id = %(run_id)s
returning lease;

-- name: holder_for_share
select run_id
from {control}.run_lease
where lease = 'candidate'
for share;
