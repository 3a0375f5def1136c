with

source as (
    select * from {{ source('crm', 'tickets') }}
),

renamed as (
    select
        {{ normalize_id('ticket_id') }} as ticket_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_id('contact_id') }} as contact_id,
        {{ normalize_picklist('status', {
            'new': 'open', 'opened': 'open', 'on_hold': 'pending', 'waiting': 'pending',
            'solved': 'resolved', 'done': 'resolved',
        }) }} as status,
        {{ normalize_picklist('priority') }} as priority,
        {{ normalize_picklist('category') }} as category,
        {{ normalize_picklist('channel', crm_channel_aliases()) }} as channel,
        created_at,
        updated_at,
        resolved_at,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'tickets') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('tickets', 'latest') }}
),

final as (
    select
        ticket_id,
        account_id,
        contact_id,
        status,
        priority,
        category,
        channel,
        created_at,
        updated_at,
        resolved_at
    from kept
)

select * from final
