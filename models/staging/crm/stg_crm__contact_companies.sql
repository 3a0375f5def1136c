with

source as (
    select * from {{ source('crm', 'contact_companies') }}
),

renamed as (
    select
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_id('contact_id') }} as contact_id,
        {{ normalize_id('company_id') }} as company_id,
        coalesce(is_primary, false) as is_primary,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'contact_companies') }}
),

kept as (
    select
        latest.account_id,
        latest.contact_id,
        latest.company_id,
        latest.is_primary,
        latest._loaded_at,
        latest._row_hash
    from latest
    where {{ crm_keep_row('contact_companies', 'latest') }}
),

-- A contact has at most one primary company: of several rows flagged primary, the one
-- loaded last wins and the others become secondary.
final as (
    select
        account_id,
        contact_id,
        company_id,
        is_primary
        and row_number() over (
            partition by account_id, contact_id, is_primary
            order by _loaded_at desc, company_id asc
        ) = 1 as is_primary
    from kept
)

select * from final
