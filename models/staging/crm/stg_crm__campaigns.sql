with

source as (
    select * from {{ source('crm', 'campaigns') }}
),

renamed as (
    select
        {{ normalize_id('campaign_id') }} as campaign_id,
        {{ normalize_id('account_id') }} as account_id,
        {{ normalize_text('name') }} as campaign_name,
        {{ normalize_picklist('channel', crm_channel_aliases()) }} as channel,
        sent_at,
        {{ normalize_id('created_by') }} as created_by,
        _loaded_at,
        {{ crm_row_hash('source') }} as _row_hash
    from source
),

latest as (
    {{ latest_per_key('renamed', 'campaigns') }}
),

kept as (
    select latest.*
    from latest
    where {{ crm_keep_row('campaigns', 'latest') }}
),

final as (
    select
        campaign_id,
        account_id,
        campaign_name,
        channel,
        sent_at,
        created_by
    from kept
)

select * from final
