-- The pipeline's own control tables (schema segments_control): the run lease, the audit
-- fingerprints and the publish lock. Created by `segments db init` (segmentation.control),
-- never by a run. Only the pipeline role gets privileges here; the reader gets no USAGE on the
-- schema, so it can neither read these tables nor lock them (docs/operations.md, "Concurrent
-- runs"). Column names such as lock are the control tables' own, hence the RF04 noqa.

create schema if not exists segments_control;

-- One row: the lease on the candidate (segments_staging and segments_audit are one shared
-- candidate for every as-of date). run_id is NULL when the lease is free. While a step of the
-- holder runs, session_pid/session_token name the idle keep-alive connection of that step
-- (its application_name carries the token), so a holder whose process died is recognised at
-- once; between two steps (DAG tasks are separate processes) the lease lasts until expires_at.
create table if not exists segments_control.run_lease (
    lease text primary key,
    run_id text,
    as_of date,
    acquired_at timestamptz,
    renewed_at timestamptz,
    expires_at timestamptz,
    holder text,
    session_pid integer,
    session_token text,
    constraint run_lease_single check (lease = 'candidate'),
    constraint run_lease_held_has_expiry check (run_id is null or expires_at is not null)
);

-- One row per audit: the run and as-of date it audited and its verdict.
create table if not exists segments_control.audits (
    audit_id bigint generated always as identity primary key,
    run_id text not null,
    as_of date not null,
    audited_at timestamptz not null default now(),
    global_failures integer not null,
    quarantined jsonb not null,
    -- account -> cause: the accounts the audit failed (their own rows broke a global check);
    -- publish refuses them. Added by serving_upgrade.sql on an older install.
    failed_accounts jsonb not null default '{}'::jsonb
);

create index if not exists audits_run_idx on segments_control.audits (run_id);

-- The fingerprint of the candidate an audit checked (fingerprint.sql): per part
-- (segment members, catalogue row, group assignments, staged contacts, as-of date) and key,
-- the row count and a content hash. publish verifies the candidate against it.
create table if not exists segments_control.audit_fingerprints (
    audit_id bigint not null references segments_control.audits on delete cascade,
    part text not null,
    account_id text,
    item_key text,
    row_count bigint not null,
    content_hash text
);

create index if not exists audit_fingerprints_audit_idx
on segments_control.audit_fingerprints (audit_id);

-- Never holds a row: publish and history take `lock table ... in exclusive mode` on it so
-- they never interleave. Unlike an advisory lock, a role without privileges here cannot take
-- it, so a reader cannot block a publish.
create table if not exists segments_control.publish_lock (
    lock text primary key  -- noqa: RF04
);
