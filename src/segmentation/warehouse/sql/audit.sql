-- The audit_* tables the GX checkpoint validates (segmentation.audit), derived from the
-- candidate in one transaction. Schemas are filled in by psycopg.sql; values are bound.

-- name: sizes
-- One row per enabled catalogue segment: its member count, bounds and the last published
-- count (filled in by `last_published_count`).
drop table if exists {audit}.audit_candidate_sizes;

create table {audit}.audit_candidate_sizes as
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
    coalesce(m.member_count, 0)::bigint as member_count,
    c.expect_min_members as min_members,
    c.expect_max_members as max_members,
    coalesce(c.expect_max_change_pct, 50)::numeric as max_change_pct,
    null::bigint as last_published_count
from {audit}.segment_catalogue as c
left join m on c.account_id = m.account_id and c.segment_key = m.segment_key
where c.enabled;

-- name: last_published_count
update {audit}.audit_candidate_sizes
set last_published_count = %(count)s
where account_id = %(account_id)s and segment_key = %(segment_key)s;

-- name: groups
-- Group assignments with the group's `exclusive` flag.
drop table if exists {audit}.audit_group_assignments;

create table {audit}.audit_group_assignments as
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

create table {audit}.audit_group_assignments (
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

create table {audit}.audit_candidate_recipients as
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
-- Only the run's accounts (int_segment_as_of holds just those: dbt vars accounts /
-- excluded_accounts) are expected.
drop table if exists {audit}.audit_expected_segments;

create table {audit}.audit_expected_segments as
select
    s.account_id,
    s.segment_key
from {audit}.int_segment_scopes as s
where
    s.enabled
    and exists (
        select 1 from {audit}.int_segment_as_of as a
        where a.account_id = s.account_id
    );
