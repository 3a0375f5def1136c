-- The audit_* tables the GX checkpoint validates (segmentation.audit), derived from the
-- candidate in one transaction. Schemas are filled in by psycopg.sql; values are bound.
-- They are unlogged: scratch tables rebuilt by every audit, so writing them needs no WAL
-- (a crash empties them, and the next audit rebuilds them). Serving stays logged.

-- name: sizes
-- One row per enabled catalogue segment: its member count, its bounds, the change floor
-- (SEGMENTS_CHANGE_FLOOR) and, filled in by `last_published`, the count and definition hash
-- last published. definition_changed: the candidate's definition_hash differs from the one
-- published, i.e. this is the first run of a new definition, which max_change_pct does not
-- judge (suite segment_bounds); min_members and max_members still do.
drop table if exists {audit}.audit_candidate_sizes;

create unlogged table {audit}.audit_candidate_sizes as
with m as (
    select
        account_id,
        segment_key,
        count(*) as member_count
    from {audit}.segment_memberships
    group by account_id, segment_key
)

select
    c.account_id,
    c.segment_key,
    c.definition_hash,
    coalesce(m.member_count, 0)::bigint as member_count,
    c.expect_min_members as min_members,
    c.expect_max_members as max_members,
    coalesce(c.expect_max_change_pct, 50)::numeric as max_change_pct,
    cast(%(change_floor)s as bigint) as change_floor,
    null::bigint as last_published_count,
    null::text as last_published_hash,
    false as definition_changed
from {audit}.segment_catalogue as c
left join m on c.account_id = m.account_id and c.segment_key = m.segment_key
where c.enabled;

-- name: last_published
-- A hash of NULL (not known) never counts as a changed definition.
update {audit}.audit_candidate_sizes
set
    last_published_count = %(count)s,
    last_published_hash = %(hash)s,
    definition_changed = (
        cast(%(hash)s as text) is not null
        and definition_hash is distinct from cast(%(hash)s as text)
    )
where account_id = %(account_id)s and segment_key = %(segment_key)s;

-- name: groups
-- Group assignments with the group's `exclusive` flag.
drop table if exists {audit}.audit_group_assignments;

create unlogged table {audit}.audit_group_assignments as
select
    ga.account_id::text as account_id,
    ga.group_key::text as group_key,
    ga.contact_id::text as contact_id,
    ga.segment_key::text as segment_key,
    coalesce(gc.exclusive, false) as exclusive  -- noqa: RF04
from {audit}.segment_group_assignments as ga
left join {audit}.int_group_catalogue as gc
    on ga.account_id = gc.account_id and ga.group_key = gc.group_key;

-- name: no_groups
-- The group relations have not been built: no assignments.
drop table if exists {audit}.audit_group_assignments;

create unlogged table {audit}.audit_group_assignments (
    account_id text,
    group_key text,
    contact_id text,
    segment_key text,
    exclusive boolean  -- noqa: RF04
);

-- name: recipients
-- {recipients}: recipients.sql (publish's rule) over the candidate membership and staged
-- contacts. Staging already nulls invalid phones and emails; suite `recipients` checks
-- consent and address_valid, guarding that contract.
drop table if exists {audit}.audit_candidate_recipients;

create unlogged table {audit}.audit_candidate_recipients as
select
    r.account_id,
    r.segment_key,
    r.contact_id,
    r.channel,
    r.address,
    r.consent,
    r.address_valid
from ({recipients}) as r;

-- name: expected
-- The audit's expected set: every enabled (account, segment) the definitions declare, as
-- int_segment_scopes expanded them (templates per account, package gating, overrides).
-- A declared segment without an enabled catalogue row then fails suite membership_integrity.
-- Only the run's accounts are expected: {run_accounts} is int_segment_as_of (it holds just
-- those: dbt vars accounts / excluded_accounts), or query `scoped_accounts` when the candidate
-- has none (a candidate built by hand).
drop table if exists {audit}.audit_expected_segments;

create unlogged table {audit}.audit_expected_segments as
select
    s.account_id,
    s.segment_key
from {audit}.int_segment_scopes as s
where
    s.enabled
    and exists (
        select 1 from {run_accounts} as a  -- noqa: AL05
        where a.account_id = s.account_id
    );

-- name: scoped_accounts
select account_id from {audit}.int_segment_scopes;

-- name: membership_summary
-- The membership checked in one pass, per segment, instead of row by row in GX: the rows,
-- contact_ids that are null, contacts listed more than once, and members that are not a
-- staged (so not deleted) contact of the same account. Each kind of offender keeps a
-- sample of its contact ids (as many as GX reports rows), so a failure still names them.
drop table if exists {audit}.audit_membership_summary;

create unlogged table {audit}.audit_membership_summary as
with per_contact as (
    select
        account_id,
        segment_key,
        contact_id,
        count(*) as copies
    from {audit}.segment_memberships
    group by account_id, segment_key, contact_id
),

checked as (
    select
        p.account_id,
        p.segment_key,
        p.contact_id,
        p.copies,
        c.contact_id is null as foreign_member
    from per_contact as p
    left join {staging}.stg_crm__contacts as c
        on p.account_id = c.account_id and p.contact_id = c.contact_id
)

select
    account_id,
    segment_key,
    sum(copies)::bigint as member_rows,
    coalesce(sum(copies) filter (where contact_id is null), 0)::bigint as null_contacts,
    count(*) filter (where copies > 1) as duplicate_members,
    (array_agg(contact_id order by contact_id) filter (where copies > 1))[
        1:%(sample)s
    ] as duplicate_sample,
    count(*) filter (where foreign_member) as foreign_members,
    (array_agg(contact_id order by contact_id) filter (where foreign_member))[
        1:%(sample)s
    ] as foreign_sample
from checked
group by account_id, segment_key;

-- name: recipients_summary
-- The recipients checked per (segment, channel) in one pass over audit_candidate_recipients,
-- with a sample of the offending contacts of each check.
drop table if exists {audit}.audit_recipients_summary;

create unlogged table {audit}.audit_recipients_summary as
select
    account_id,
    segment_key,
    channel,
    count(*) as recipients,
    count(*) filter (where address is null) as null_addresses,
    (array_agg(contact_id order by contact_id) filter (where address is null))[
        1:%(sample)s
    ] as null_address_sample,
    count(*) filter (where consent is not true) as without_consent,
    (array_agg(contact_id order by contact_id) filter (where consent is not true))[
        1:%(sample)s
    ] as without_consent_sample,
    count(*) filter (where address_valid is not true) as invalid_addresses,
    (array_agg(contact_id order by contact_id) filter (where address_valid is not true))[
        1:%(sample)s
    ] as invalid_address_sample
from {audit}.audit_candidate_recipients
group by account_id, segment_key, channel;
