-- Membership history (segmentation.history): every statement runs in the one history
-- transaction, under the publish lock. Schemas are filled in by psycopg.sql; values are
-- bound (%(as_of)s, %(run_id)s, ...). hist_* tables are temporary.

-- name: latest_published
select as_of
from {serving}.publish_log
order by publish_id desc
limit 1;

-- name: latest_recorded
select max(as_of) from {history}.recorded_dates;

-- name: base
-- hist_prev: the membership snapshot of the latest recorded date.
create temp table hist_prev on commit drop as
select
    account_id,
    segment_key,
    contact_id,
    definition_hash
from {history}.membership_state;

-- name: undo_rerun_date
-- The snapshot holds as_of itself: undo that date's changes to get the date before.
delete from hist_prev as p
using {history}.membership_changes as c
where
    c.as_of = %(as_of)s
    and c.change = 'entered'
    and c.account_id = p.account_id
    and c.segment_key = p.segment_key
    and c.contact_id = p.contact_id;

insert into hist_prev (account_id, segment_key, contact_id, definition_hash)
select
    account_id,
    segment_key,
    contact_id,
    definition_hash
from {history}.membership_changes
where as_of = %(as_of)s and change = 'exited';

-- name: published
alter table hist_prev add primary key (account_id, segment_key, contact_id);

-- hist_new: the membership serving shows now (what the publish of as_of wrote).
create temp table hist_new on commit drop as
select
    m.account_id,
    m.segment_key,
    m.contact_id,
    s.definition_hash
from {serving}.segment_members as m
inner join {serving}.segments as s
    on m.account_id = s.account_id and m.segment_key = s.segment_key;

alter table hist_new add primary key (account_id, segment_key, contact_id);

analyze hist_prev, hist_new;

-- name: write
delete from {history}.membership_changes
where as_of = %(as_of)s;

insert into {history}.membership_changes
(as_of, account_id, segment_key, contact_id, change, definition_hash, run_id)
select
    %(as_of)s as as_of,
    n.account_id,
    n.segment_key,
    n.contact_id,
    'entered' as change,  -- noqa: RF04
    n.definition_hash,
    %(run_id)s as run_id
from hist_new as n
where
    not exists (
        select 1 from hist_prev as p
        where
            p.account_id = n.account_id
            and p.segment_key = n.segment_key
            and p.contact_id = n.contact_id
    )
union all
select
    %(as_of)s as as_of,
    p.account_id,
    p.segment_key,
    p.contact_id,
    'exited' as change,  -- noqa: RF04
    coalesce(s.definition_hash, p.definition_hash) as definition_hash,
    %(run_id)s as run_id
from hist_prev as p
left join {serving}.segments as s
    on p.account_id = s.account_id and p.segment_key = s.segment_key
where not exists (
    select 1 from hist_new as n
    where
        n.account_id = p.account_id
        and n.segment_key = p.segment_key
        and n.contact_id = p.contact_id
);

delete from {history}.segment_sizes
where as_of = %(as_of)s;

with c as (
    select
        account_id,
        segment_key,
        count(*) filter (where change = 'entered')::integer as entered,
        count(*) filter (where change = 'exited')::integer as exited
    from {history}.membership_changes
    where as_of = %(as_of)s
    group by account_id, segment_key
)

insert into {history}.segment_sizes (
    as_of, account_id, segment_key, member_count, entered, exited, stale,
    definition_hash, run_id
)
select
    %(as_of)s as as_of,
    s.account_id,
    s.segment_key,
    s.member_count,
    coalesce(c.entered, 0) as entered,
    coalesce(c.exited, 0) as exited,
    s.stale,
    s.definition_hash,
    %(run_id)s as run_id
from {serving}.segments as s
left join c on s.account_id = c.account_id and s.segment_key = c.segment_key;

delete from {history}.membership_state;

insert into {history}.membership_state
(as_of, account_id, segment_key, contact_id, definition_hash)
select
    %(as_of)s as as_of,
    account_id,
    segment_key,
    contact_id,
    definition_hash
from hist_new;

-- name: changes
select
    count(*) filter (where change = 'entered') as entered,
    count(*) filter (where change = 'exited') as exited
from {history}.membership_changes
where as_of = %(as_of)s;

-- name: segment_count
select count(*) as segments from {serving}.segments;

-- name: record_date
insert into {history}.recorded_dates (as_of, run_id, recorded_at, entered, exited)
values (%(as_of)s, %(run_id)s, %(recorded_at)s, %(entered)s, %(exited)s)
on conflict (as_of) do update set
    run_id = excluded.run_id,
    recorded_at = excluded.recorded_at,
    entered = excluded.entered,
    exited = excluded.exited;
