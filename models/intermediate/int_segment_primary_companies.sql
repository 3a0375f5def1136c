{#- Each contact's primary company (at most one per contact): what `company.*` fields in
    segment definitions read. -#}
with

links as (
    select * from {{ ref('stg_crm__contact_companies') }}
    where is_primary
),

companies as (
    select * from {{ ref('stg_crm__companies') }}
),

final as (
    select
        links.contact_id,
        companies.*
    from links
    inner join companies
        on
            links.account_id = companies.account_id
            and links.company_id = companies.company_id
)

select * from final
