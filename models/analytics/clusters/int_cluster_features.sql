{#- What steps.clusters clusters on: one row per staged contact and the run's as-of date.

    Activity counts over the trailing `cluster_window_days` (default 90) use the segment
    language's own `within_last` rule (segment_compare on the account-local date, read
    against a.as_of_date), so "in the window" means what `within: {last_days: N}` means in a
    definition. Company size and industry are the contact's primary company's
    (int_segment_primary_companies, what `company.*` fields read). Every count is 0, never
    NULL, for a contact without activity; company_size and industry are NULL without a
    primary company. Every column but the keys, as_of and industry is a numeric feature of
    the step, so a new column here is a new feature there.

    RFM (rfm_scores, for the same as-of date) adds recency_days, frequency and monetary, not
    the 1-5 scores (the same information again) nor rfm_segment (text). A contact without a
    completed order has no recency: it gets the days since it was created (it has not ordered
    in all that time), NULL only when that is unknown (the step then takes the median). -#}
{%- set window_days = var('cluster_window_days', 90) -%}
{%- if not modules.re.fullmatch('[1-9][0-9]{0,4}', window_days | string) -%}
    {{ exceptions.raise_compiler_error("var 'cluster_window_days' must be a positive whole number of days, got '" ~ window_days ~ "'") }}
{%- endif -%}
{%- set window = {'unit': 'days', 'n': window_days | int} -%}
{#- Deals count twice, by when they were created and when they were won. -#}
{%- set created_in_window = segment_compare(
    segment_local_date('src.created_at'), 'within_last', window, 'timestamp') -%}
{%- set closed_in_window = segment_compare(
    segment_local_date('src.closed_at'), 'within_last', window, 'timestamp') %}
with

as_of as (
    select * from {{ ref('int_segment_as_of') }}
),

contacts as (
    select
        account_id,
        contact_id,
        created_at
    from {{ ref('stg_crm__contacts') }}
),

rfm as (
    select
        account_id,
        contact_id,
        as_of,
        recency_days,
        frequency,
        monetary
    from {{ ref('rfm_scores') }}
),

campaign_events as (
    select
        src.account_id,
        src.contact_id,
        count(*) as campaign_events,
        count(*) filter (
            where src.event_type in ('read', 'clicked', 'replied')
        ) as campaign_engagements
    from {{ ref('stg_crm__campaign_events') }} as src
    inner join as_of as a on src.account_id = a.account_id
    where {{ segment_compare(segment_local_date('src.occurred_at'), 'within_last', window, 'timestamp') }}
    group by src.account_id, src.contact_id
),

conversations as (
    select
        src.account_id,
        src.contact_id,
        count(*) as conversations
    from {{ ref('stg_crm__conversations') }} as src
    inner join as_of as a on src.account_id = a.account_id
    where {{ segment_compare(segment_local_date('src.started_at'), 'within_last', window, 'timestamp') }}
    group by src.account_id, src.contact_id
),

tickets as (
    select
        src.account_id,
        src.contact_id,
        count(*) as tickets
    from {{ ref('stg_crm__tickets') }} as src
    inner join as_of as a on src.account_id = a.account_id
    where {{ segment_compare(segment_local_date('src.created_at'), 'within_last', window, 'timestamp') }}
    group by src.account_id, src.contact_id
),

orders as (
    select
        src.account_id,
        src.contact_id,
        count(*) as orders,
        coalesce(sum(src.amount), 0) as order_value
    from {{ ref('stg_crm__orders') }} as src
    inner join as_of as a on src.account_id = a.account_id
    where
        src.status = 'completed'
        and {{ segment_compare(segment_local_date('src.ordered_at'), 'within_last', window, 'timestamp') }}
    group by src.account_id, src.contact_id
),

deals as (
    select
        src.account_id,
        src.contact_id,
        count(*) filter (where {{ created_in_window }}) as deals,
        count(*) filter (where src.status = 'won' and {{ closed_in_window }}) as deals_won
    from {{ ref('stg_crm__deals') }} as src
    inner join as_of as a on src.account_id = a.account_id
    where src.contact_id is not null
    group by src.account_id, src.contact_id
),

companies as (
    select
        account_id,
        contact_id,
        employee_count,
        industry
    from {{ ref('int_segment_primary_companies') }}
),

final as (
    select
        contacts.account_id,
        contacts.contact_id,
        a.as_of_date as as_of,
        coalesce(campaign_events.campaign_events, 0) as campaign_events,
        coalesce(campaign_events.campaign_engagements, 0) as campaign_engagements,
        coalesce(conversations.conversations, 0) as conversations,
        coalesce(tickets.tickets, 0) as tickets,
        coalesce(orders.orders, 0) as orders,
        coalesce(orders.order_value, 0) as order_value,
        coalesce(deals.deals, 0) as deals,
        coalesce(deals.deals_won, 0) as deals_won,
        coalesce(
            rfm.recency_days, a.as_of_date - {{ segment_local_date('contacts.created_at') }}
        ) as recency_days,
        coalesce(rfm.frequency, 0) as frequency,
        coalesce(rfm.monetary, 0) as monetary,
        companies.employee_count as company_size,
        companies.industry
    from contacts
    inner join as_of as a on contacts.account_id = a.account_id
    left join campaign_events
        on
            contacts.account_id = campaign_events.account_id
            and contacts.contact_id = campaign_events.contact_id
    left join conversations
        on
            contacts.account_id = conversations.account_id
            and contacts.contact_id = conversations.contact_id
    left join tickets
        on
            contacts.account_id = tickets.account_id
            and contacts.contact_id = tickets.contact_id
    left join orders
        on
            contacts.account_id = orders.account_id
            and contacts.contact_id = orders.contact_id
    left join deals
        on
            contacts.account_id = deals.account_id
            and contacts.contact_id = deals.contact_id
    left join companies
        on
            contacts.account_id = companies.account_id
            and contacts.contact_id = companies.contact_id
    left join rfm
        on
            contacts.account_id = rfm.account_id
            and contacts.contact_id = rfm.contact_id
            and a.as_of_date = rfm.as_of
)

select * from final
