-- The raw CRM contract: the tables an ELT loads into schema crm_raw.
--
-- Raw tables carry no primary or foreign keys on purpose (accounts excepted): an ELT
-- appends and replays, so duplicates, orphans and cross-account references do arrive,
-- and the staging layer is where they are resolved, rejected and counted.
-- `_loaded_at` is the ELT's load timestamp; dbt source freshness reads it.
-- IDs are text and every timestamp is timestamptz. See docs/raw-contract.md.

create schema if not exists crm_raw;

create table if not exists crm_raw.accounts (
    account_id text primary key,
    name text,  -- noqa: RF04
    package text,                      -- plus | ultimate | 360
    timezone text not null default 'Asia/Jakarta',  -- IANA name
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.users (
    user_id text,
    account_id text,
    name text,  -- noqa: RF04
    email text,
    team text,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.contacts (
    contact_id text,
    account_id text,
    full_name text,
    email text,
    phone text,
    gender text,
    date_of_birth date,
    job_title text,
    city text,
    province text,
    country text,
    lifecycle_stage text,
    lead_source text,
    owner_user_id text,
    tags text[],
    custom_fields jsonb,
    consent_whatsapp boolean,
    consent_email boolean,
    consent_sms boolean,
    consent_updated_at timestamptz,
    loyalty_tier text,
    loyalty_points integer,
    created_at timestamptz,
    created_by text,
    updated_at timestamptz,
    updated_by text,
    deleted_at timestamptz,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.companies (
    company_id text,
    account_id text,
    name text,  -- noqa: RF04
    industry text,
    employee_count integer,
    annual_revenue numeric,
    city text,
    country text,
    created_at timestamptz,
    updated_at timestamptz,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.contact_companies (
    account_id text,
    contact_id text,
    company_id text,
    is_primary boolean,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.deals (
    deal_id text,
    account_id text,
    contact_id text,
    company_id text,
    pipeline text,
    stage text,  -- noqa: RF04
    status text,                       -- open | won | lost
    amount numeric,
    currency text,
    created_at timestamptz,
    updated_at timestamptz,
    closed_at timestamptz,
    expected_close_date date,
    owner_user_id text,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.tickets (
    ticket_id text,
    account_id text,
    contact_id text,
    status text,                       -- open | pending | resolved | closed
    priority text,
    category text,
    channel text,
    created_at timestamptz,
    updated_at timestamptz,
    resolved_at timestamptz,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.conversations (
    conversation_id text,
    account_id text,
    contact_id text,
    channel text,                      -- whatsapp | email | sms | livechat | instagram | facebook
    status text,
    started_at timestamptz,
    last_message_at timestamptz,
    message_count integer,
    agent_user_id text,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.campaigns (
    campaign_id text,
    account_id text,
    name text,  -- noqa: RF04
    channel text,
    sent_at timestamptz,
    created_by text,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.campaign_events (
    event_id text,
    account_id text,
    campaign_id text,
    contact_id text,
    event_type text,                   -- sent | delivered | read | replied | clicked | failed | unsubscribed
    occurred_at timestamptz,
    _loaded_at timestamptz not null default now()
);

create table if not exists crm_raw.orders (
    order_id text,
    account_id text,
    contact_id text,
    amount numeric,
    currency text,
    status text,                       -- completed | refunded | cancelled
    ordered_at timestamptz,
    _loaded_at timestamptz not null default now()
);
