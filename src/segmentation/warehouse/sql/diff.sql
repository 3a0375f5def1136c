-- `segments diff` (steps/diff.py): the working definitions against what serving shows.
-- Read only: the candidates are built by dbt in segments_audit, nothing here writes.
-- {candidate} is one generated segment model of the plan (an identifier filled in by
-- psycopg.sql); values are bound.

-- name: latest_as_of
-- A 'failed' row (an account not refreshed that run) published nothing.
select max(as_of) from {serving}.publish_log
where status <> 'failed';

-- name: changed_scopes
-- Every (account, segment) whose enabled definition differs from the one serving shows, is
-- new, or was removed (deleted or disabled), with the published definition when recorded.
with

candidate as (
    select
        account_id,
        segment_key,
        model_name,
        definition_hash,
        source_file
    from {audit}.int_segment_scopes
    where enabled
),

published as (
    select
        account_id,
        segment_key,
        definition_hash,
        member_count,
        stale
    from {serving}.segments
)

select
    coalesce(c.account_id, p.account_id) as account_id,
    coalesce(c.segment_key, p.segment_key) as segment_key,
    c.model_name,
    c.definition_hash as candidate_hash,
    p.definition_hash as published_hash,
    c.source_file,
    d.source_file as published_source_file,
    d.definition::text as published_definition
from candidate as c
full outer join published as p
    on c.account_id = p.account_id and c.segment_key = p.segment_key
left join {history}.published_definitions as d
    on p.definition_hash = d.definition_hash
where c.definition_hash is distinct from p.definition_hash
order by account_id, segment_key;

-- name: member_changes
-- Published against candidate members of one segment: sizes, entered and exited.
with

cand as (
    select distinct contact_id
    from {candidate}
    where account_id = %(account_id)s and segment_key = %(segment_key)s
),

pub as (
    select contact_id
    from {serving}.segment_members
    where account_id = %(account_id)s and segment_key = %(segment_key)s
)

select
    (select count(*) from pub) as published,
    (select count(*) from cand) as candidate,
    (
        select count(*) from cand
        where not exists (
            select 1 from pub
            where pub.contact_id = cand.contact_id
        )
    ) as entered,
    (
        select count(*) from pub
        where not exists (
            select 1 from cand
            where cand.contact_id = pub.contact_id
        )
    ) as exited;

-- name: member_samples
-- Up to %(limit)s contacts who would enter and who would exit, in contact_id order.
with

cand as (
    select distinct contact_id
    from {candidate}
    where account_id = %(account_id)s and segment_key = %(segment_key)s
),

pub as (
    select contact_id
    from {serving}.segment_members
    where account_id = %(account_id)s and segment_key = %(segment_key)s
),

entered as (
    select
        'entered' as change,  -- noqa: RF04
        cand.contact_id
    from cand
    where
        not exists (
            select 1 from pub
            where pub.contact_id = cand.contact_id
        )
    order by cand.contact_id
    limit %(limit)s
),

exited as (
    select
        'exited' as change,  -- noqa: RF04
        pub.contact_id
    from pub
    where
        not exists (
            select 1 from cand
            where cand.contact_id = pub.contact_id
        )
    order by pub.contact_id
    limit %(limit)s
)

select
    change,  -- noqa: RF04
    contact_id
from entered
union all
select
    change,  -- noqa: RF04
    contact_id
from exited;

-- name: staged_accounts
select to_regclass(%(relation)s) is not null;
