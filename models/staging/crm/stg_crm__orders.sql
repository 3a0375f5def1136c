with

source as (
    select * from {{ source('crm', 'orders') }}
),

renamed as (
    select
        {{ normalize_id('order_id') }} as order_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_id('contact_id') }} as contact_id,
        amount,
        {{ normalize_currency('currency') }} as currency,
        {{ normalize_picklist('status', {
            'complete': 'completed', 'paid': 'completed', 'fulfilled': 'completed',
            'refund': 'refunded', 'canceled': 'cancelled', 'cancel': 'cancelled',
        }) }} as status,
        ordered_at,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'orders') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('orders', 'latest') }}
),

final as (
    select
        order_id,
        account_id,
        contact_id,
        amount,
        currency,
        status,
        ordered_at
    from kept
)

select * from final
