with

source as (
    select * from {{ source('crm', 'deals') }}
),

renamed as (
    select
        {{ normalize_id('deal_id') }} as deal_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_id('contact_id') }} as contact_id,
        {{ normalize_id('company_id') }} as company_id,
        {{ normalize_text('pipeline') }} as pipeline,
        -- `stage` is the contract's column name, keyword or not.
        {{ normalize_text('stage') }} as stage,  -- noqa: RF04
        {{ normalize_picklist('status', {
            'closed_won': 'won', 'closedwon': 'won', 'closed_lost': 'lost', 'closedlost': 'lost',
            'opened': 'open', 'in_progress': 'open',
        }) }} as status,
        amount,
        {{ normalize_currency('currency') }} as currency,
        created_at,
        updated_at,
        closed_at,
        expected_close_date,
        {{ normalize_id('owner_user_id') }} as owner_user_id,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'deals') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('deals', 'latest') }}
),

final as (
    select
        deal_id,
        account_id,
        contact_id,
        company_id,
        pipeline,
        stage,
        status,
        amount,
        currency,
        created_at,
        updated_at,
        closed_at,
        expected_close_date,
        owner_user_id
    from kept
)

select * from final
