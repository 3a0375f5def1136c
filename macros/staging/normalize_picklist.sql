{#- Picklist value in lower snake_case ('  Marketing Qualified Lead ' ->
    'marketing_qualified_lead'); blank -> NULL.

    `aliases` maps known spellings (after snake-casing) to the canonical value, e.g.
    {'live_chat': 'livechat'}. Aliases come from model code, never from data, and are
    still checked so that a typo cannot break the generated SQL. -#}
{% macro normalize_picklist(column, aliases=none) -%}
    {%- set snake -%}
        nullif(btrim(regexp_replace(lower({{ column }}), '[^a-z0-9]+', '_', 'g'), '_'), '')
    {%- endset -%}
    {%- if aliases -%}
        {%- for alias, canonical in aliases.items() -%}
            {%- for value in [alias, canonical] -%}
                {%- if not modules.re.match('^[a-z0-9_]+$', value) -%}
                    {{ exceptions.raise_compiler_error("normalize_picklist: alias values must be lower snake_case, got '" ~ value ~ "'") }}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        (case {{ snake }}
            {%- for alias, canonical in aliases.items() %}
            when '{{ alias }}' then '{{ canonical }}'
            {%- endfor %}
            else {{ snake }}
        end)
    {%- else -%}
        {{ snake }}
    {%- endif -%}
{%- endmacro %}

{#- Spellings of the messaging channels seen in CRM exports, mapped to the canonical
    Broadcast channel names. -#}
{% macro crm_channel_aliases() -%}
    {{ return({
        'wa': 'whatsapp', 'whats_app': 'whatsapp', 'whatsapp_business': 'whatsapp',
        'live_chat': 'livechat', 'web_chat': 'livechat', 'webchat': 'livechat',
        'ig': 'instagram', 'instagram_dm': 'instagram',
        'fb': 'facebook', 'messenger': 'facebook', 'facebook_messenger': 'facebook',
        'e_mail': 'email', 'mail': 'email', 'text': 'sms',
    }) }}
{%- endmacro %}
