{#- The KPI formulas, once, over two kinds of population per recorded date: each segment's
    members (segment_key set) and all the account's contacts (segment_key NULL,
    is_account). segment_kpis and account_kpis select from here. Rates are NULL when their
    denominator is zero. -#}
with

contact_kpis as (
    select * from {{ ref('int_contact_kpis_by_date') }}
),

populations as (
    select
        account_id,
        segment_key,
        contact_id,
        as_of,
        false as is_account
    from {{ ref('int_segment_members_by_date') }}
    union all
    select
        account_id,
        null as segment_key,
        contact_id,
        as_of,
        true as is_account
    from {{ ref('int_account_contacts_by_date') }}
),

account_sizes as (
    select
        account_id,
        as_of,
        count(*) as contacts
    from {{ ref('int_account_contacts_by_date') }}
    group by account_id, as_of
),

totals as (
    select
        populations.account_id,
        populations.segment_key,
        populations.as_of,
        populations.is_account,
        count(*) as members,
        sum(contact_kpis.revenue) as revenue,
        count(contact_kpis.bought_after) as retention_base,
        count(*) filter (where contact_kpis.bought_after) as retained,
        count(contact_kpis.bought_after_to_date) as retention_to_date_base,
        count(*) filter (where contact_kpis.bought_after_to_date) as retained_to_date,
        sum(contact_kpis.campaigns) as campaigns,
        sum(contact_kpis.delivered) as delivered,
        sum(contact_kpis.was_read) as was_read,
        sum(contact_kpis.clicked) as clicked,
        sum(contact_kpis.replied) as replied,
        sum(contact_kpis.open_tickets) as open_tickets
    from populations
    inner join contact_kpis
        on
            populations.account_id = contact_kpis.account_id
            and populations.contact_id = contact_kpis.contact_id
            and populations.as_of = contact_kpis.as_of
    group by populations.account_id, populations.segment_key, populations.as_of, populations.is_account
),

final as (
    select
        totals.account_id,
        totals.segment_key,
        totals.as_of,
        totals.is_account,
        totals.members::integer as members,
        totals.members::numeric / nullif(account_sizes.contacts, 0) as share_of_contacts,
        totals.revenue::numeric as revenue,
        totals.revenue::numeric / nullif(totals.members, 0) as arpu,
        totals.retained::numeric / nullif(totals.retention_base, 0) as retention_rate,
        totals.retained_to_date::numeric / nullif(totals.retention_to_date_base, 0)
            as retention_rate_to_date,
        totals.campaigns::integer as campaign_recipients,
        totals.delivered::numeric / nullif(totals.campaigns, 0) as delivered_rate,
        totals.was_read::numeric / nullif(totals.campaigns, 0) as read_rate,
        totals.clicked::numeric / nullif(totals.campaigns, 0) as clicked_rate,
        totals.replied::numeric / nullif(totals.campaigns, 0) as replied_rate,
        totals.open_tickets::integer as open_tickets,
        totals.open_tickets::numeric / nullif(totals.members, 0) as open_tickets_per_member
    from totals
    inner join account_sizes
        on totals.account_id = account_sizes.account_id and totals.as_of = account_sizes.as_of
)

select * from final
