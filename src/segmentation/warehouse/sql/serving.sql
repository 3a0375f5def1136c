-- The serving contract (schema segments_serving) and the history (schema segments_history).
--
-- These tables are created once, by `segments db init`, and never dropped or recreated by a
-- run: a publish changes their rows inside one transaction (see publish.py). Because no DDL
-- ever runs on them, their grants, row-level security policies and any dependent views
-- outside the schema survive every publish. Roles, grants and policies: security.py.
-- The contract is versioned: see docs/serving-contract.md before changing anything here.
-- Column names such as name, owner and change are the contract's, hence the RF04 noqa.

create schema if not exists segments_serving;
create schema if not exists segments_history;

-- One row per segment of an account. as_of and published_at describe the membership shown;
-- they are NULL only for a segment that has never published successfully (then stale).
create table if not exists segments_serving.segments (
    account_id text not null,
    segment_key text not null,
    name text not null,  -- noqa: RF04
    description text,
    owner text,  -- noqa: RF04
    visibility text,
    tags text[] not null default '{}',
    definition_hash text not null,
    member_count integer not null default 0,
    as_of date,
    published_at timestamptz,
    stale boolean not null default false,
    stale_reason text,
    primary key (account_id, segment_key),
    constraint segments_stale_has_reason check (not stale or stale_reason is not null)
);

-- member_since: the first as-of date of the contact's current unbroken membership.
-- The primary key's leading columns serve "all members of one segment".
create table if not exists segments_serving.segment_members (
    account_id text not null,
    segment_key text not null,
    contact_id text not null,
    member_since date not null,
    primary key (account_id, segment_key, contact_id)
);

-- "Which segments is this contact in?"
create index if not exists segment_members_contact_idx
on segments_serving.segment_members (account_id, contact_id);

-- The segment a contact was assigned to within a group (one per exclusive group).
create table if not exists segments_serving.group_assignments (
    account_id text not null,
    group_key text not null,
    contact_id text not null,
    segment_key text not null,
    primary key (account_id, group_key, contact_id)
);

create index if not exists group_assignments_segment_idx
on segments_serving.group_assignments (account_id, segment_key);

-- Who Broadcast may message: members with consent for the channel and a valid address.
create table if not exists segments_serving.broadcast_recipients (
    account_id text not null,
    segment_key text not null,
    contact_id text not null,
    channel text not null,
    address text not null,
    primary key (account_id, segment_key, contact_id, channel),
    constraint broadcast_recipients_channel check (channel in ('whatsapp', 'email', 'sms'))
);

-- One row per account per publish (account_id NULL: a row from before serving contract 2,
-- when one publish spanned every account). Broadcast's role is not granted it.
-- status: 'published', 'partial' (some segments quarantined), 'accepted' (`segments accept`
-- released one quarantined segment: accepted_by, accept_reason) or 'failed' (the account was
-- not published this run; its segments kept their last publish and are marked stale).
-- Upgrades of an existing install: serving_upgrade.sql.
create table if not exists segments_serving.publish_log (
    publish_id bigint generated always as identity primary key,
    run_id text not null,
    as_of date not null,
    published_at timestamptz not null,
    segments_published integer not null,
    segments_quarantined integer not null,
    status text not null,
    account_id text,
    accepted_by text,
    accept_reason text,
    constraint publish_log_status check (
        status in ('published', 'partial', 'accepted', 'failed')
    )
);

create index if not exists publish_log_as_of_idx on segments_serving.publish_log (as_of);

-- Which accounts each reader login may read: the reader role's row-level security keys on
-- current_user through this table. Managed by `segments grant-reader` / `revoke-reader`
-- (security.py); a login sees only its own rows here, the pipeline none.
create table if not exists segments_serving.reader_accounts (
    role_name text not null,
    account_id text not null,
    granted_at timestamptz not null default now(),
    primary key (role_name, account_id)
);

-- History. membership_changes is append-only except that recording an as-of date again
-- replaces that date's rows (history.py); segment_sizes has one row per date and segment.
create table if not exists segments_history.membership_changes (
    as_of date not null,
    account_id text not null,
    segment_key text not null,
    contact_id text not null,
    change text not null,  -- noqa: RF04
    definition_hash text,
    run_id text not null,
    primary key (as_of, account_id, segment_key, contact_id),
    constraint membership_changes_change check (change in ('entered', 'exited'))
);

create index if not exists membership_changes_contact_idx
on segments_history.membership_changes (account_id, contact_id, as_of);

create table if not exists segments_history.segment_sizes (
    as_of date not null,
    account_id text not null,
    segment_key text not null,
    member_count integer not null,
    entered integer not null,
    exited integer not null,
    stale boolean not null,
    definition_hash text,
    run_id text not null,
    primary key (as_of, account_id, segment_key)
);

-- Per account, the published membership of its latest recorded date only (that date is the
-- account's latest recorded_dates row): the base that account's next date is computed
-- against. Each date applies its changes to it (a rerun of that same date first undoes them).
create table if not exists segments_history.membership_state (
    account_id text not null,
    segment_key text not null,
    contact_id text not null,
    definition_hash text,
    primary key (account_id, segment_key, contact_id)
);

-- One row per account and recorded as-of date; an account's maximum is its "latest
-- recorded date" (accounts move forward independently).
create table if not exists segments_history.recorded_dates (
    account_id text not null,
    as_of date not null,
    run_id text not null,
    recorded_at timestamptz not null,
    entered integer not null,
    exited integer not null,
    primary key (account_id, as_of)
);

-- The definition behind every definition_hash ever published (`segments diff` shows what
-- changed against it). Written in the publish transaction, keyed by the hash, never updated:
-- `definition` is the normalised logic the hash is computed over (model.logic_json), so a
-- row proves itself. scope: the account, or '*' for a template under segment_defs/_all/.
create table if not exists segments_history.published_definitions (
    definition_hash text primary key,
    segment_key text not null,
    scope text not null,
    definition jsonb not null,
    source_file text,
    first_published_at timestamptz not null,
    first_run_id text not null
);
