-- `segments preview` and `segments why` (segmentation.steps.preview). The evaluation itself
-- is the segment_preview_sql macro, compiled by dbt; these are the look-ups around it.
-- Schema names are filled in by psycopg.sql; values are bound.

-- name: read_only
-- A preview never writes: its transaction is read only.
set transaction_read_only = on;

-- name: staged_accounts
-- The staged accounts (a missing table means nothing is staged yet).
select account_id
from {staging}.stg_crm__accounts
order by account_id;

-- name: staged_contact
-- One staged contact of an account, with its creation time.
select
    contact_id,
    created_at
from {staging}.stg_crm__contacts
where
    account_id = %(account_id)s
    and contact_id = %(contact_id)s;

-- name: nearby_contacts
-- Candidates for a "did you mean": the same id in another case, and the ids sorted next to
-- it (a typo near the end of an id sorts close by).
select contact_id
from {staging}.stg_crm__contacts
where
    account_id = %(account_id)s
    and lower(contact_id) = lower(%(contact_id)s)
union all
(
    select contact_id
    from {staging}.stg_crm__contacts
    where account_id = %(account_id)s and contact_id < %(contact_id)s
    order by contact_id desc
    limit 25
)
union all
(
    select contact_id
    from {staging}.stg_crm__contacts
    where account_id = %(account_id)s and contact_id > %(contact_id)s
    order by contact_id asc
    limit 25
);

-- name: built_as_of
-- The as-of date (and timezone) of the last build, for one account.
select
    as_of_date,
    timezone
from {audit}.int_segment_as_of
where account_id = %(account_id)s;

-- name: built_feature_columns
-- The columns of the built feature models (int_contact_features__<object>).
select
    table_name,
    column_name
from information_schema.columns
where
    table_schema = %(schema)s
    and table_name like 'int\_contact\_features\_\_%%';
