-- What `make bench` runs against its own scale database (segmentation_dev.bench_scale);
-- nothing in the pipeline reads this file. {bench_table} is a relation the bench names
-- from pg_tables or the activity catalogue (psycopg.sql.Identifier); values are bound.

-- name: dataset
-- Which generated data set a bench database holds, so a later bench reuses it.
create table if not exists public.bench_dataset (
    accounts integer not null,  -- noqa: RF04
    contacts integer not null,
    seed integer not null,
    anchor date not null,
    load_seconds double precision not null,
    loaded_at timestamptz not null default now()
);

select
    accounts,
    contacts,
    seed,
    anchor,
    load_seconds
from public.bench_dataset;

-- name: record_dataset
delete from public.bench_dataset;

insert into public.bench_dataset (accounts, contacts, seed, anchor, load_seconds)
values (%(accounts)s, %(n_contacts)s, %(seed)s, %(as_of)s, %(seconds)s);

-- name: reset_pipeline
-- Everything the pipeline writes, so each bench starts from an empty serving schema;
-- crm_raw (the data set) stays. `segments db init` then recreates the schemas.
drop schema if exists {staging} cascade;
drop schema if exists {audit} cascade;
drop schema if exists {serving} cascade;
drop schema if exists {history} cascade;
drop schema if exists {marts} cascade;
drop schema if exists {control} cascade;

-- name: staged_tables
-- floor_scan reads every staged table the segments read: all of staging but the
-- diagnostics.
select tablename
from pg_tables
where schemaname = %(schema)s and tablename like 'stg\_%%'
order by tablename;

-- name: drop_serving
drop schema if exists {serving} cascade;
drop schema if exists {history} cascade;

-- name: scan
select count(*) from {bench_table};

-- name: membership_rows
select count(*) from {audit}.segment_memberships;

-- name: floor_write
-- The same number of rows as the membership, written as dbt writes a table model.
drop table if exists {audit}.bench_floor_write;

create table {audit}.bench_floor_write as
select * from {audit}.segment_memberships;

-- name: drop_floor_write
drop table if exists {audit}.bench_floor_write;

-- name: touch_contacts
-- The next day's ELT load: a new version of about 1% of the contacts (chosen by a hash of
-- the id and the day), with their lifecycle stage, loyalty points and e-mail consent
-- changed, loaded and updated after every earlier version.
insert into {raw}.contacts
select
    c.contact_id,
    c.account_id,
    c.full_name,
    c.email,
    c.phone,
    c.gender,
    c.date_of_birth,
    c.job_title,
    c.city,
    c.province,
    c.country,
    case when c.lifecycle_stage = 'customer' then 'lead' else 'customer' end
        as lifecycle_stage,
    c.lead_source,
    c.owner_user_id,
    c.tags,
    c.custom_fields,
    c.consent_whatsapp,
    not coalesce(c.consent_email, false) as consent_email,
    c.consent_sms,
    c.consent_updated_at,
    c.loyalty_tier,
    coalesce(c.loyalty_points, 0) + 500 as loyalty_points,
    c.created_at,
    c.created_by,
    greatest(c.updated_at, %(loaded_at)s::timestamptz - interval '1 hour') as updated_at,
    c.updated_by,
    c.deleted_at,
    %(loaded_at)s::timestamptz as _loaded_at
from (
    select distinct on (account_id, contact_id) *
    from {raw}.contacts
    where mod(abs(hashtext(contact_id || %(salt)s)), 100) = 0
    order by
        account_id asc, contact_id asc, updated_at desc nulls last, _loaded_at desc
) as c;

-- name: analyze_contacts
analyze {raw}.contacts;

-- name: index_activity
-- naive_20's premise: the activity tables indexed on the contact, as a hand-written
-- project would index them for its correlated subqueries.
create index on {bench_table} (account_id, contact_id);

-- name: index_companies
create index on {bench_table} (account_id, company_id);

-- name: analyze_table
analyze {bench_table};

-- name: members_per_segment
select
    account_id,
    segment_key,
    count(*) as members
from {audit}.segment_memberships
group by account_id, segment_key;

-- name: settings
select
    name,
    setting,
    unit
from pg_settings
where
    name in (
        'shared_buffers', 'work_mem', 'maintenance_work_mem',
        'max_parallel_workers_per_gather', 'max_parallel_workers', 'max_worker_processes',
        'effective_cache_size', 'fsync', 'synchronous_commit', 'jit', 'random_page_cost'
    )
order by name;

-- name: version
select version();

-- name: active_statements
-- What the bench's statement profile samples every few seconds: one row per running
-- statement of the scale database (a parallel query's workers are left out: their leader
-- stands for them), autovacuum's included, since it competes for the same cores.
select query
from pg_stat_activity
where
    state = 'active'
    and datname = %(dbname)s
    and pid <> pg_backend_pid()
    and leader_pid is null
    and backend_type in ('client backend', 'autovacuum worker');
