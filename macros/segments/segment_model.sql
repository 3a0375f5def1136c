{#- The body of one generated segment model (models/segments/generated/seg__*.sql):
    one row per member contact, for one account or, for a template, for every account
    int_segment_scopes lists for it (not those that define the key themselves, nor those
    whose package lacks what it needs).

    Contacts created after the as-of date are never members, so a backfill for an old
    as-of date only sees contacts that existed then. Inputs are the staged contacts (a
    table) and int_segment_primary_companies (one row per contact, also a table); rfm.*
    fields read rfm_scores and cluster.* fields the clustering step's contact_clusters, both
    at the run's as-of date (a contact without such a row has those fields unset).

    segment_preview_sql (segment_preview.sql) evaluates the same definition through the
    same two macros, segment_inputs and segment_candidates, with its own `inputs`. -#}
{% macro segment_model(definition) -%}
{%- if segment_strategy() == 'one_pass' and definition.pass is defined -%}
{{ segment_pass_view(definition) }}
{%- else -%}
with

{{ segment_inputs(definition) }}

final as (
    select
        c.account_id,
        {{ segment_literal(definition.key, 'string') }} as segment_key,
        c.contact_id,
        a.as_of_date,
        {{ segment_literal(definition.definition_hash, 'string') }} as definition_hash
    {{- segment_candidates(definition) }}
        and {{ segment_node_sql(definition.condition) }}
)

select * from final
{%- endif -%}
{%- endmacro %}

{#- The CTEs as_of, contacts and (when company fields are read) primary_companies, each
    followed by a comma. `inputs` (none for a model) replaces what the model reads from
    earlier models: {as_of: relation, scopes: relation, account: account_id, features:
    {object: relation}}; relations are names the calling macro defines, never YAML. -#}
{% macro segment_inputs(definition, inputs=none) -%}
    {%- set entities = definition.entities | default(['contact']) -%}
    {%- set template = definition.account == '*' -%}
    {%- set inputs = inputs or {} -%}
as_of as (
    select * from {{ inputs.as_of if inputs.as_of is defined else ref('int_segment_as_of') }}
),

contacts as (
    select * from {{ ref('stg_crm__contacts') }}
    {%- if not template %}
    where account_id = {{ segment_literal(definition.account, 'string') }}
    {%- else %}
    {#- the accounts the template applies to (package gating, overrides): int_segment_scopes #}
    where account_id in (
        select scopes.account_id
        from {{ inputs.scopes if inputs.scopes is defined else ref('int_segment_scopes') }} as scopes
        where
            scopes.is_template
            and scopes.segment_key = {{ segment_literal(definition.key, 'string') }}
    )
    {%- endif %}
    {%- if inputs.account is defined %}
        and account_id = {{ segment_literal(inputs.account, 'string') }}
    {%- endif %}
),
{%- if 'company' in entities %}

primary_companies as (
    select * from {{ ref('int_segment_primary_companies') }}
),
{%- endif %}
{%- endmacro %}

{#- The FROM and WHERE of the candidates: the contact c, its as-of row a, the primary
    company co and the feature models feat_<object>, keeping contacts that existed on the
    as-of date. The caller appends `and <condition>` (or nothing). `extra_joins`: more
    joins written by segment_pass (its template scopes and imported columns). -#}
{% macro segment_candidates(definition, inputs=none, extra_joins='') -%}
    {%- set entities = definition.entities | default(['contact']) -%}
    {%- set inputs = inputs or {} %}
    from contacts as c
    inner join as_of as a on c.account_id = a.account_id
    {%- if 'company' in entities %}
    left join primary_companies as co
        on
            c.account_id = co.account_id
            and c.contact_id = co.contact_id
    {%- endif %}
    {%- if 'rfm' in entities %}
    left join {{ ref('rfm_scores') }} as rfm
        on
            c.account_id = rfm.account_id
            and c.contact_id = rfm.contact_id
            and a.as_of_date = rfm.as_of
    {%- endif %}
    {%- if 'cluster' in entities %}
    left join {{ source('segments_marts', 'contact_clusters') }} as cl
        on
            c.account_id = cl.account_id
            and c.contact_id = cl.contact_id
            and a.as_of_date = cl.as_of
    {%- endif %}
    {{- feature_joins(definition.activity_objects | default([]), inputs.features if inputs.features is defined else none) }}
    {{- extra_joins }}
    where
        (c.created_at is null or {{ segment_local_date('c.created_at') }} <= a.as_of_date)
{%- endmacro %}
