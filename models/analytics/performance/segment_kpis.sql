{#- KPIs per segment and recorded date (docs/analytics.md, _performance__models.yml). -#}
with

kpis as (
    select * from {{ ref('int_kpis_by_population') }}
    where not is_account
),

final as (
    select
        account_id,
        segment_key,
        as_of,
        members,
        share_of_contacts,
        arpu,
        retention_rate,
        delivered_rate,
        read_rate,
        clicked_rate,
        replied_rate,
        open_tickets_per_member,
        revenue,
        retention_rate_to_date,
        campaign_recipients,
        open_tickets
    from kpis
)

select * from final
