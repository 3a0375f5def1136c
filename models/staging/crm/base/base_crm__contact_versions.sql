-- The latest version of every contact, soft-deleted ones included: the lookup that tells
-- an activity row's contact apart as live, deleted, another tenant's or unknown.
-- Same keys and version order as stg_crm__contacts (crm_table_spec('contacts')).
--
-- Always a table, analysed right after the build: every staging model semi-joins to it,
-- and without statistics PostgreSQL guesses 0.5% of rows for `not is_deleted` and picks
-- nested loops that take minutes at 100k rows (seen when staging was views).

-- Indexed on the key: int_crm__rejected_rows looks contacts up row by row (correlated
-- EXISTS in crm_rejection_reason), and an unindexed lookup is a scan per raw row.

{{ config(
    materialized='table',
    post_hook=['create index on {{ this }} (account_id, contact_id)', 'analyze {{ this }}'],
) }}

with

source as (
    select * from {{ source('crm', 'contacts') }}
),

renamed as (
    select
        {{ normalize_id('contact_id') }} as contact_id,
        {{ normalize_id('account_id') }} as account_id,
        deleted_at,
        updated_at,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'contacts') }}
),

final as (
    select
        account_id,
        contact_id,
        deleted_at is not null as is_deleted
    from latest
    where
        account_id is not null
        and contact_id is not null
)

select * from final
