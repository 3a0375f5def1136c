with

source as (
    select * from {{ source('crm', 'conversations') }}
),

renamed as (
    select
        {{ normalize_id('conversation_id') }} as conversation_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_id('contact_id') }} as contact_id,
        {{ normalize_picklist('channel', crm_channel_aliases()) }} as channel,
        {{ normalize_picklist('status') }} as status,
        started_at,
        last_message_at,
        message_count,
        {{ normalize_id('agent_user_id') }} as agent_user_id,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'conversations') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('conversations', 'latest') }}
),

final as (
    select
        conversation_id,
        account_id,
        contact_id,
        channel,
        status,
        started_at,
        last_message_at,
        message_count,
        agent_user_id
    from kept
)

select * from final
