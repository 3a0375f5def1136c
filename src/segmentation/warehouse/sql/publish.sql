-- The atomic publish of ONE account (steps.publish.publish_account): every statement runs in
-- that account's publish transaction, in the order of the named queries below, and touches
-- only rows of %(account_id)s (the copies are of that account only, and every statement on a
-- serving table names the account), so accounts publish independently. Schemas and relations
-- are filled in by psycopg.sql ({serving}, {candidate_groups}, ...); values are bound
-- (%(as_of)s, ...). pub_* tables are temporary and dropped at commit or rollback.

-- name: last_published_counts
select
    account_id,
    segment_key,
    member_count
from {serving}.segments
where published_at is not null;

-- name: candidate_accounts
-- The accounts the candidate was built for (int_segment_as_of has one row per account of the
-- run, also one without any segment left; {as_of_rel} may be an empty relation) and those in
-- its catalogue.
select account_id from {as_of_rel} as a  -- noqa: AL05
where account_id is not null
union
select account_id from {audit}.segment_catalogue
where account_id is not null
order by account_id;

-- name: last_published
-- The count and definition hash last published (a stale segment: the ones it kept).
select
    account_id,
    segment_key,
    member_count,
    definition_hash
from {serving}.segments
where published_at is not null;

-- name: latest_as_of
-- The as-of date serving shows for an account: that of its latest publish that published
-- (a 'failed' row published nothing; a row without account is from before contract 2 and
-- covered every account).
select as_of
from {serving}.publish_log
where
    (account_id = %(account_id)s or account_id is null)
    and status <> 'failed'
order by publish_id desc
limit 1;

-- name: snapshot
-- Copy the candidate: everything below reads the copies, so the fingerprint verified is
-- exactly what is published, whatever a concurrent build does to the live relations.
create temp table pub_cand_members on commit drop as
select
    account_id,
    segment_key,
    contact_id
from {audit}.segment_memberships
where account_id = %(account_id)s;

create temp table pub_cand_catalogue on commit drop as
select
    account_id,
    segment_key,
    name,
    description,
    owner,
    visibility,
    tags,
    enabled,
    definition_hash,
    expect_min_members,
    expect_max_members,
    expect_max_change_pct
from {audit}.segment_catalogue
where account_id = %(account_id)s;

-- {candidate_groups} is the relation, or an empty one when the groups were not built.
create temp table pub_cand_groups on commit drop as
select
    g.account_id,
    g.group_key,
    g.contact_id,
    g.segment_key
from {candidate_groups} as g
where g.account_id = %(account_id)s;

create temp table pub_cand_contacts on commit drop as
select
    contact_id,
    account_id,
    email,
    phone,
    consent_whatsapp,
    consent_email,
    consent_sms
from {staging}.stg_crm__contacts
where account_id = %(account_id)s;

-- Not published, only fingerprinted: the account's as-of date of the candidate.
create temp table pub_cand_as_of on commit drop as
select
    a.account_id,
    a.as_of_date
from {candidate_as_of} as a
where a.account_id = %(account_id)s;

analyze pub_cand_members, pub_cand_catalogue, pub_cand_groups, pub_cand_contacts;

-- name: prepare
create temp table pub_quarantine on commit drop as
select
    q.account_id,
    q.segment_key,
    q.reason
from unnest(%(q_acc)s::text[], %(q_seg)s::text[], %(q_reason)s::text[])
    as q (account_id, segment_key, reason);

create temp table pub_catalogue on commit drop as
select distinct on (c.account_id, c.segment_key)
    c.account_id,
    c.segment_key,
    coalesce(c.name, c.segment_key) as name,  -- noqa: RF04
    c.description,
    c.owner,
    c.visibility,
    coalesce(c.tags, array[]::text[])::text[] as tags,
    c.definition_hash,
    q.reason as quarantine_reason,
    q.account_id is not null as quarantined
from pub_cand_catalogue as c
left join pub_quarantine as q
    on c.account_id = q.account_id and c.segment_key = q.segment_key
where c.enabled
order by c.account_id, c.segment_key;

create temp table pub_members on commit drop as
select distinct
    m.account_id,
    m.segment_key,
    m.contact_id
from pub_cand_members as m
inner join pub_catalogue as c
    on m.account_id = c.account_id and m.segment_key = c.segment_key
where not c.quarantined and m.contact_id is not null;

alter table pub_members add primary key (account_id, segment_key, contact_id);

analyze pub_catalogue, pub_members;

-- name: write_members
-- pub_member_changes: the (segment, contact) pairs that entered or exited this publish, the
-- members whose recipients write_recipients must add or take away.
create temp table pub_member_changes (
    segment_key text not null,
    contact_id text not null
) on commit drop;

-- The account's segments that were removed from the definitions or disabled (their
-- recipients go with the segment, in write_recipients).
delete from {serving}.segment_members as s
where s.account_id = %(account_id)s and not exists (
    select 1 from pub_catalogue as c
    where c.account_id = s.account_id and c.segment_key = s.segment_key
);

-- Exits from published segments (quarantined ones keep their members).
with exited as (
    delete from {serving}.segment_members as s
    using pub_catalogue as c
    where
        c.account_id = s.account_id
        and c.segment_key = s.segment_key
        and not c.quarantined
        and not exists (
            select 1 from pub_members as m
            where
                m.account_id = s.account_id
                and m.segment_key = s.segment_key
                and m.contact_id = s.contact_id
        )
    returning s.segment_key, s.contact_id
)

insert into pub_member_changes (segment_key, contact_id)
select
    segment_key,
    contact_id
from exited;

-- Entries: a continuing member keeps member_since, a new one starts today.
with entered as (
    insert into {serving}.segment_members
    (account_id, segment_key, contact_id, member_since)
    select
        m.account_id,
        m.segment_key,
        m.contact_id,
        %(as_of)s as member_since
    from pub_members as m
    where
        not exists (
            select 1 from {serving}.segment_members as s
            where
                s.account_id = m.account_id
                and s.segment_key = m.segment_key
                and s.contact_id = m.contact_id
        )
    returning segment_key, contact_id
)

insert into pub_member_changes (segment_key, contact_id)
select
    segment_key,
    contact_id
from entered;

alter table pub_member_changes add primary key (segment_key, contact_id);

analyze pub_member_changes;

-- name: rewind_member_since
-- Only a deliberate rewind (or an account serving shows no date for) can find a continuing
-- member whose membership starts later; publish.py runs this only then, as a daily publish
-- would join the whole membership to find nothing.
update {serving}.segment_members as s
set member_since = %(as_of)s
from pub_members as m
where
    m.account_id = s.account_id
    and m.segment_key = s.segment_key
    and m.contact_id = s.contact_id
    and s.member_since > %(as_of)s;

-- name: write_segments
delete from {serving}.segments as s
where s.account_id = %(account_id)s and not exists (
    select 1 from pub_catalogue as c
    where c.account_id = s.account_id and c.segment_key = s.segment_key
);

with n as (
    select
        account_id,
        segment_key,
        count(*)::integer as members
    from pub_members
    group by account_id, segment_key
)

insert into {serving}.segments (
    account_id, segment_key, name, description, owner, visibility, tags,
    definition_hash, member_count, as_of, published_at, stale, stale_reason
)
select
    c.account_id,
    c.segment_key,
    c.name,
    c.description,
    c.owner,
    c.visibility,
    c.tags,
    c.definition_hash,
    coalesce(n.members, 0) as member_count,
    %(as_of)s as as_of,
    %(published_at)s as published_at,
    false as stale,
    null as stale_reason
from pub_catalogue as c
left join n on c.account_id = n.account_id and c.segment_key = n.segment_key
where not c.quarantined
on conflict (account_id, segment_key) do update set
    name = excluded.name,
    description = excluded.description,
    owner = excluded.owner,
    visibility = excluded.visibility,
    tags = excluded.tags,
    definition_hash = excluded.definition_hash,
    member_count = excluded.member_count,
    as_of = excluded.as_of,
    published_at = excluded.published_at,
    stale = false,
    stale_reason = null;

-- Quarantined: the last good row stays as it was, flagged. A segment that never published
-- gets a row without membership (as_of and published_at NULL) so Broadcast sees why.
update {serving}.segments as s
set stale = true, stale_reason = c.quarantine_reason
from pub_catalogue as c
where c.quarantined and c.account_id = s.account_id and c.segment_key = s.segment_key;

insert into {serving}.segments (
    account_id, segment_key, name, description, owner, visibility, tags,
    definition_hash, member_count, as_of, published_at, stale, stale_reason
)
select
    c.account_id,
    c.segment_key,
    c.name,
    c.description,
    c.owner,
    c.visibility,
    c.tags,
    c.definition_hash,
    0 as member_count,
    null as as_of,
    null as published_at,
    true as stale,
    c.quarantine_reason as stale_reason
from pub_catalogue as c
where c.quarantined
on conflict (account_id, segment_key) do nothing;

-- name: write_definitions
-- The definition of each hash this publish shows, unless an earlier publish recorded it.
-- The arrays hold the plan's definitions (publish.py checked each against its hash).
insert into {history}.published_definitions (
    definition_hash, segment_key, scope, definition, source_file, first_published_at,
    first_run_id
)
select
    d.definition_hash,
    d.segment_key,
    d.scope,
    d.definition::jsonb as definition,
    d.source_file,
    %(published_at)s as first_published_at,
    %(run_id)s as first_run_id
from
    unnest(
        %(d_hash)s::text[], %(d_key)s::text[], %(d_scope)s::text[], %(d_definition)s::text[],
        %(d_source)s::text[]
    ) as d (definition_hash, segment_key, scope, definition, source_file)
where
    exists (
        select 1 from pub_catalogue as c
        where c.definition_hash = d.definition_hash and not c.quarantined
    )
on conflict (definition_hash) do nothing;

-- name: write_groups
create temp table pub_groups on commit drop as
select
    account_id,
    group_key,
    contact_id,
    segment_key
from {serving}.group_assignments
with no data;

-- pub_cand_groups is empty when the group relations have not been built.
insert into pub_groups
select distinct on (g.account_id, g.group_key, g.contact_id)
    g.account_id,
    g.group_key,
    g.contact_id,
    g.segment_key
from pub_cand_groups as g
where
    g.contact_id is not null and not exists (
        -- segment_key may also be a group's fallback label, not in the catalogue
        select 1 from pub_catalogue as c
        where
            c.quarantined
            and c.account_id = g.account_id
            and c.segment_key = g.segment_key
    )
order by g.account_id, g.group_key, g.contact_id, g.segment_key;

-- A quarantined segment keeps its assignments, unless the audited candidate now assigns
-- that contact to another segment of the group (one assignment per contact and group).
insert into pub_groups
select
    s.account_id,
    s.group_key,
    s.contact_id,
    s.segment_key
from {serving}.group_assignments as s
inner join pub_catalogue as c
    on s.account_id = c.account_id and s.segment_key = c.segment_key
where c.quarantined and not exists (
    select 1 from pub_groups as g
    where
        g.account_id = s.account_id
        and g.group_key = s.group_key
        and g.contact_id = s.contact_id
);

delete from {serving}.group_assignments as s
where s.account_id = %(account_id)s and not exists (
    select 1 from pub_groups as g
    where
        g.account_id = s.account_id
        and g.group_key = s.group_key
        and g.contact_id = s.contact_id
        and g.segment_key = s.segment_key
);

insert into {serving}.group_assignments
(account_id, group_key, contact_id, segment_key)
select
    g.account_id,
    g.group_key,
    g.contact_id,
    g.segment_key
from pub_groups as g
where not exists (
    select 1 from {serving}.group_assignments as s
    where
        s.account_id = g.account_id
        and s.group_key = g.group_key
        and s.contact_id = g.contact_id
);

-- name: write_recipients
-- Every recipient row of a staged contact is a membership of it times its channels today
-- ({channels}: recipients.sql over the copied contacts, the valid addresses only), so only
-- two kinds of row can change: those of the pairs that entered or exited
-- (pub_member_changes) and those of the contacts whose channels differ from the ones their
-- rows show now (pub_changed_contacts). Only those are deleted and recomputed: a day costs
-- what changed, not the whole recipient set (tests/warehouse/test_publish_recipients.py
-- checks it against the rule over the whole membership). A quarantined segment keeps its
-- recipients like its members: a frozen member who is no longer a staged contact (a mass
-- deletion is what quarantine guards against) keeps the rows last published. A member still
-- staged follows today's consent and address, so consent is never stale.
create temp table pub_channels on commit drop as
select
    ch.contact_id,
    ch.channel,
    ch.address
from ({channels}) as ch
where ch.address_valid;

create temp table pub_changed_contacts on commit drop as
with shown as (
    select distinct
        r.contact_id,
        r.channel,
        r.address
    from {serving}.broadcast_recipients as r
    where r.account_id = %(account_id)s
),

differ as (
    (
        select * from shown
        except
        select * from pub_channels
    )
    union all
    (
        -- a contact with no membership has no recipients to change
        select * from pub_channels as ch
        where
            exists (
                select 1 from {serving}.segment_members as m
                where m.account_id = %(account_id)s and m.contact_id = ch.contact_id
            )
        except
        select * from shown
    )
)

select distinct contact_id from differ;

alter table pub_changed_contacts add primary key (contact_id);

analyze pub_channels, pub_changed_contacts;

-- The recipients of removed or disabled segments.
delete from {serving}.broadcast_recipients as s
where s.account_id = %(account_id)s and not exists (
    select 1 from pub_catalogue as c
    where c.account_id = s.account_id and c.segment_key = s.segment_key
);

-- Of the pairs that exited.
delete from {serving}.broadcast_recipients as s
using pub_member_changes as x
where
    s.account_id = %(account_id)s
    and s.segment_key = x.segment_key
    and s.contact_id = x.contact_id;

-- Of the contacts whose channels changed, but a quarantined segment's frozen rows of a
-- contact no longer staged.
delete from {serving}.broadcast_recipients as s
using pub_changed_contacts as x
where
    s.account_id = %(account_id)s
    and s.contact_id = x.contact_id
    and not (
        exists (
            select 1 from pub_catalogue as q
            where
                q.quarantined
                and q.account_id = s.account_id
                and q.segment_key = s.segment_key
        )
        and not exists (
            select 1 from pub_cand_contacts as c
            where c.account_id = s.account_id and c.contact_id = s.contact_id
        )
    );

-- The rows of the entered pairs and of the changed contacts' memberships, from serving's
-- members as they now stand.
insert into {serving}.broadcast_recipients
(account_id, segment_key, contact_id, channel, address)
select
    m.account_id,
    m.segment_key,
    m.contact_id,
    ch.channel,
    ch.address
from {serving}.segment_members as m
inner join pub_channels as ch on m.contact_id = ch.contact_id
where
    m.account_id = %(account_id)s
    and (
        exists (
            select 1 from pub_member_changes as x
            where x.segment_key = m.segment_key and x.contact_id = m.contact_id
        )
        or exists (
            select 1 from pub_changed_contacts as x
            where x.contact_id = m.contact_id
        )
    )
on conflict (account_id, segment_key, contact_id, channel) do update
    set address = excluded.address;

-- name: accepted_not_stale
-- `segments accept`: the accepted segments that serving no longer shows stale.
select
    a.account_id,
    a.segment_key
from unnest(%(a_acc)s::text[], %(a_seg)s::text[]) as a (account_id, segment_key)
where
    not exists (
        select 1 from {serving}.segments as s
        where
            s.account_id = a.account_id
            and s.segment_key = a.segment_key
            and s.stale
    )
order by a.account_id, a.segment_key;

-- name: write_log
insert into {serving}.publish_log (
    run_id, as_of, published_at, segments_published, segments_quarantined, status,
    account_id, accepted_by, accept_reason
)
values (
    %(run_id)s, %(as_of)s, %(published_at)s, %(published)s, %(quarantined)s, %(status)s,
    %(account_id)s, %(accepted_by)s, %(accept_reason)s
)
returning publish_id;

-- name: counts
select
    count(*) filter (where not quarantined) as published,
    count(*) filter (where quarantined) as quarantined
from pub_catalogue;

-- name: serving_segments
select
    account_id,
    segment_key,
    member_count,
    stale,
    stale_reason
from {serving}.segments
where account_id = %(account_id)s
order by account_id, segment_key;

-- name: mark_failed
-- An account that could not be published this run keeps its last publish; Broadcast sees
-- why its segments are not today's. Its own transaction, its own rows only.
update {serving}.segments
set stale = true, stale_reason = %(reason)s
where account_id = %(account_id)s;

insert into {serving}.publish_log (
    run_id, as_of, published_at, segments_published, segments_quarantined, status, account_id
)
values (%(run_id)s, %(as_of)s, %(published_at)s, 0, 0, 'failed', %(account_id)s);
