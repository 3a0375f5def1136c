{#- RFM per contact for the run's as-of date (docs/analytics.md, "## RFM").

    - recency_days: days from the last completed order (its date in the account's
      timezone, on or before the as-of date) to the as-of date;
    - frequency: completed orders dated in [as_of - rfm_window_days, as_of] (the window of
      the language's within_last), monetary: the sum of their amounts;
    - r/f/m_score: ntile(5) within the account over the contacts with a completed order, in
      a deterministic order with contact_id (its UTF-8 bytes: code-point order) breaking
      ties: r over recency_days descending (5 = most recent), f over frequency, m over
      monetary (5 = most);
    - rfm_segment: rfm_segment_map at (r_score, fm_score), fm_score = round(mean(f, m)).

    Contacts without a completed order on or before the as-of date get r = f = m = 1,
    frequency 0, monetary 0, recency_days NULL and rfm_segment 'no_orders'. Like segment
    members, only contacts that existed on the as-of date are scored, so a backfill sees the
    account as it was. The database clock is never read. -#}
{%- set window_days = var('rfm_window_days', 365) | string | trim -%}
{%- if not modules.re.fullmatch('^[1-9][0-9]{0,4}$', window_days) -%}
    {{ exceptions.raise_compiler_error(
        "var 'rfm_window_days' must be a whole number of days from 1 to 99999, got '"
        ~ window_days ~ "'") }}
{%- endif %}
with

as_of as (
    select * from {{ ref('int_segment_as_of') }}
),

contacts as (
    select
        c.account_id,
        c.contact_id,
        a.as_of_date
    from {{ ref('stg_crm__contacts') }} as c
    inner join as_of as a on c.account_id = a.account_id
    where c.created_at is null or {{ segment_local_date('c.created_at') }} <= a.as_of_date
),

completed_orders as (
    select
        o.account_id,
        o.contact_id,
        o.amount,
        a.as_of_date,
        {{ segment_local_date('o.ordered_at') }} as order_date
    from {{ ref('stg_crm__orders') }} as o
    inner join as_of as a on o.account_id = a.account_id
    where
        o.status = 'completed'
        and o.contact_id is not null
        and o.ordered_at is not null
        and {{ segment_local_date('o.ordered_at') }} <= a.as_of_date
),

buyers as (
    select
        account_id,
        contact_id,
        max(order_date) as last_order_date,
        min(as_of_date) - max(order_date) as recency_days,
        count(*) filter (
            where order_date >= as_of_date - {{ window_days }}
        ) as frequency,
        coalesce(sum(amount) filter (
            where order_date >= as_of_date - {{ window_days }}
        ), 0) as monetary
    from completed_orders
    group by account_id, contact_id
),

-- Only contacts that existed on the as-of date are ranked. Ties are broken by the bytes of
-- contact_id (code-point order), whatever the database's collation.
eligible_buyers as (
    select buyers.*
    from buyers
    inner join contacts
        on
            buyers.account_id = contacts.account_id
            and buyers.contact_id = contacts.contact_id
),

scored as (
    select
        buyers.*,
        ntile(5) over (
            partition by buyers.account_id
            order by buyers.recency_days desc, convert_to(buyers.contact_id, 'UTF8')
        ) as r_score,
        ntile(5) over (
            partition by buyers.account_id
            order by buyers.frequency, convert_to(buyers.contact_id, 'UTF8')
        ) as f_score,
        ntile(5) over (
            partition by buyers.account_id
            order by buyers.monetary, convert_to(buyers.contact_id, 'UTF8')
        ) as m_score
    from eligible_buyers as buyers
),

segment_map as (
    select * from {{ ref('rfm_segment_map') }}
),

final as (
    select
        contacts.account_id,
        contacts.contact_id,
        contacts.as_of_date as as_of,
        scored.last_order_date,
        cast(scored.recency_days as integer) as recency_days,
        cast(coalesce(scored.frequency, 0) as integer) as frequency,
        cast(coalesce(scored.monetary, 0) as numeric) as monetary,
        cast(coalesce(scored.r_score, 1) as integer) as r_score,
        cast(coalesce(scored.f_score, 1) as integer) as f_score,
        cast(coalesce(scored.m_score, 1) as integer) as m_score,
        cast((coalesce(scored.f_score, 1) + coalesce(scored.m_score, 1) + 1) / 2 as integer)
            as fm_score,
        case
            when scored.contact_id is null then 'no_orders'
            else segment_map.rfm_segment
        end as rfm_segment
    from contacts
    left join scored
        on
            contacts.account_id = scored.account_id
            and contacts.contact_id = scored.contact_id
    left join segment_map
        on
            scored.r_score = segment_map.r_score
            and (scored.f_score + scored.m_score + 1) / 2 = segment_map.fm_score
)

select * from final
