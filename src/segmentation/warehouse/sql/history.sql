-- Membership history (steps.history), keyed on (account, as-of date): every statement runs
-- in the history transaction of one account, %(account_id)s, under the publish lock, and
-- touches only that account's rows, so accounts move forward independently. Schemas are
-- filled in by psycopg.sql; values are bound (%(as_of)s, %(run_id)s, ...).

-- name: published_accounts
-- The accounts serving has published (also one whose last segment was removed since).
select account_id from {serving}.segments
union
select account_id from {serving}.publish_log
where account_id is not null
order by account_id;

-- name: latest_published
-- The as-of date serving shows for the account (as publish.sql latest_as_of).
select as_of
from {serving}.publish_log
where
    (account_id = %(account_id)s or account_id is null)
    and status <> 'failed'
order by publish_id desc
limit 1;

-- name: latest_recorded
select max(as_of) from {history}.recorded_dates
where account_id = %(account_id)s;

-- name: apply_changes
-- membership_state takes the as-of date's changes: rows whose change is %(remove)s go, rows
-- whose change is %(add)s come. Forward ('exited', 'entered') after the date is written; in
-- reverse ('entered', 'exited') it undoes a recorded date (a rerun), so the state holds the
-- date before again, which the date is computed against.
delete from {history}.membership_state as s
using {history}.membership_changes as c
where
    c.as_of = %(as_of)s
    and c.account_id = %(account_id)s
    and c.change = %(remove)s
    and s.account_id = c.account_id
    and s.segment_key = c.segment_key
    and s.contact_id = c.contact_id;

insert into {history}.membership_state (account_id, segment_key, contact_id, definition_hash)
select
    account_id,
    segment_key,
    contact_id,
    definition_hash
from {history}.membership_changes
where as_of = %(as_of)s and account_id = %(account_id)s and change = %(add)s;

-- name: write
-- The changes are the anti-joins of what serving shows now (what the publish of as_of wrote)
-- and membership_state (the latest earlier recorded date) on their primary keys; then the
-- state takes only those changes (apply_changes, rehash), so a day costs what changed, not
-- the whole membership.
delete from {history}.membership_changes
where as_of = %(as_of)s and account_id = %(account_id)s;

insert into {history}.membership_changes
(as_of, account_id, segment_key, contact_id, change, definition_hash, run_id)
select
    %(as_of)s as as_of,
    n.account_id,
    n.segment_key,
    n.contact_id,
    'entered' as change,  -- noqa: RF04
    s.definition_hash,
    %(run_id)s as run_id
from {serving}.segment_members as n
inner join {serving}.segments as s
    on n.account_id = s.account_id and n.segment_key = s.segment_key
where
    n.account_id = %(account_id)s
    and not exists (
        select 1 from {history}.membership_state as p
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
from {history}.membership_state as p
left join {serving}.segments as s
    on p.account_id = s.account_id and p.segment_key = s.segment_key
where
    p.account_id = %(account_id)s
    and not exists (
        select 1 from {serving}.segment_members as n
        where
            n.account_id = p.account_id
            and n.segment_key = p.segment_key
            and n.contact_id = p.contact_id
    );

delete from {history}.segment_sizes
where as_of = %(as_of)s and account_id = %(account_id)s;

with c as (
    select
        account_id,
        segment_key,
        count(*) filter (where change = 'entered')::integer as entered,
        count(*) filter (where change = 'exited')::integer as exited
    from {history}.membership_changes
    where as_of = %(as_of)s and account_id = %(account_id)s
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
left join c on s.account_id = c.account_id and s.segment_key = c.segment_key
where s.account_id = %(account_id)s;

-- name: rehash
-- A continuing member of a segment whose definition changed takes the new hash.
update {history}.membership_state as p
set definition_hash = s.definition_hash
from {serving}.segments as s
where
    p.account_id = %(account_id)s
    and s.account_id = p.account_id
    and s.segment_key = p.segment_key
    and p.definition_hash is distinct from s.definition_hash;

-- name: changes
select
    count(*) filter (where change = 'entered') as entered,
    count(*) filter (where change = 'exited') as exited
from {history}.membership_changes
where as_of = %(as_of)s and account_id = %(account_id)s;

-- name: segment_count
select count(*) as segments from {serving}.segments
where account_id = %(account_id)s;

-- name: record_date
insert into {history}.recorded_dates (account_id, as_of, run_id, recorded_at, entered, exited)
values (%(account_id)s, %(as_of)s, %(run_id)s, %(recorded_at)s, %(entered)s, %(exited)s)
on conflict (account_id, as_of) do update set
    run_id = excluded.run_id,
    recorded_at = excluded.recorded_at,
    entered = excluded.entered,
    exited = excluded.exited;

-- name: replay
-- The membership implied by the account's recorded changes up to %(as_of)s: a contact is a
-- member of a segment when its latest change on or before that date is 'entered', and
-- member_since is that change's date (the start of its current unbroken membership).
select
    l.segment_key,
    l.contact_id,
    l.as_of as member_since
from (
    select distinct on (c.segment_key, c.contact_id)
        c.segment_key,
        c.contact_id,
        c.change,
        c.as_of
    from {history}.membership_changes as c
    where c.account_id = %(account_id)s and c.as_of <= %(as_of)s
    order by c.segment_key asc, c.contact_id asc, c.as_of desc
) as l
where l.change = 'entered'
order by l.segment_key, l.contact_id;

-- name: later_recorded
-- Whether the account has recorded dates after %(as_of)s (a rewind must rewrite them) and
-- whether it has any history before it (the base member_since is taken from).
select
    coalesce(bool_or(as_of > %(as_of)s), false) as later,
    coalesce(bool_or(as_of < %(as_of)s), false) as earlier
from {history}.recorded_dates
where account_id = %(account_id)s;

-- name: rewind
-- In the publish transaction of an older as-of date: the account's history after that date
-- no longer describes what serving shows, so it is deleted (a later run or backfill records
-- those dates again), and membership_state becomes the membership of the latest date still
-- recorded (on or before %(as_of)s), replayed from the changes.
delete from {history}.membership_changes
where account_id = %(account_id)s and as_of > %(as_of)s;

delete from {history}.segment_sizes
where account_id = %(account_id)s and as_of > %(as_of)s;

delete from {history}.recorded_dates
where account_id = %(account_id)s and as_of > %(as_of)s;

delete from {history}.membership_state
where account_id = %(account_id)s;

with base as (
    select max(as_of) as as_of from {history}.recorded_dates
    where account_id = %(account_id)s
),

last_change as (
    select distinct on (c.segment_key, c.contact_id)
        c.segment_key,
        c.contact_id,
        c.change,
        c.definition_hash
    from {history}.membership_changes as c
    where c.account_id = %(account_id)s
    order by c.segment_key asc, c.contact_id asc, c.as_of desc
)

insert into {history}.membership_state (account_id, segment_key, contact_id, definition_hash)
select
    %(account_id)s as account_id,
    l.segment_key,
    l.contact_id,
    coalesce(z.definition_hash, l.definition_hash) as definition_hash
from last_change as l
cross join base as b
left join {history}.segment_sizes as z
    on
        b.as_of = z.as_of
        and l.segment_key = z.segment_key
        and z.account_id = %(account_id)s
where l.change = 'entered' and b.as_of is not null;

-- name: rewind_member_since
-- A rewind cannot tell from serving alone when a continuing member's membership started
-- (serving has moved on since); history can: a member of the latest recorded date before
-- %(as_of)s keeps the start of that membership, every other member starts on %(as_of)s.
with last_change as (
    select distinct on (c.segment_key, c.contact_id)
        c.segment_key,
        c.contact_id,
        c.change,
        c.as_of
    from {history}.membership_changes as c
    where c.account_id = %(account_id)s and c.as_of < %(as_of)s
    order by c.segment_key asc, c.contact_id asc, c.as_of desc
)

update {serving}.segment_members as s
set member_since = coalesce(l.as_of, %(as_of)s)
from {serving}.segment_members as m
left join last_change as l
    on
        m.segment_key = l.segment_key
        and m.contact_id = l.contact_id
        and l.change = 'entered'
where
    m.account_id = %(account_id)s
    and s.account_id = m.account_id
    and s.segment_key = m.segment_key
    and s.contact_id = m.contact_id
    and s.member_since is distinct from coalesce(l.as_of, %(as_of)s);
