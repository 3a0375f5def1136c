with

source as (
    select * from {{ source('crm', 'campaign_events') }}
),

renamed as (
    select
        {{ normalize_id('event_id') }} as event_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_id('campaign_id') }} as campaign_id,
        {{ normalize_id('contact_id') }} as contact_id,
        {{ normalize_picklist('event_type', {
            'send': 'sent', 'deliver': 'delivered', 'opened': 'read', 'open': 'read',
            'reply': 'replied', 'click': 'clicked', 'fail': 'failed', 'bounced': 'failed',
            'unsubscribe': 'unsubscribed', 'opt_out': 'unsubscribed', 'opted_out': 'unsubscribed',
        }) }} as event_type,
        occurred_at,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'campaign_events') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('campaign_events', 'latest') }}
),

final as (
    select
        event_id,
        account_id,
        campaign_id,
        contact_id,
        event_type,
        occurred_at
    from kept
)

select * from final
