with

source as (
    select * from {{ source('crm', 'companies') }}
),

renamed as (
    select
        {{ normalize_id('company_id') }} as company_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_text('name') }} as company_name,
        {{ normalize_picklist('industry') }} as industry,
        employee_count,
        annual_revenue,
        {{ normalize_place('city') }} as city,
        {{ normalize_country('country') }} as country,
        created_at,
        updated_at,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'companies') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('companies', 'latest') }}
),

final as (
    select
        company_id,
        account_id,
        company_name,
        industry,
        employee_count,
        annual_revenue,
        city,
        country,
        created_at,
        updated_at
    from kept
)

select * from final
