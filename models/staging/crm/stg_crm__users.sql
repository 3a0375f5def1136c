with

source as (
    select * from {{ source('crm', 'users') }}
),

renamed as (
    select
        {{ normalize_id('user_id') }} as user_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_text('name') }} as user_name,
        {{ normalize_email('email') }} as email,
        {{ normalize_text('team') }} as team,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'users') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('users', 'latest') }}
),

final as (
    select
        user_id,
        account_id,
        user_name,
        email,
        team
    from kept
)

select * from final
