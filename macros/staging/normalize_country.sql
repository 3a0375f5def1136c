{#- Country as an upper-case ISO 3166-1 alpha-2 code ('Indonesia', ' id ', 'IDN' -> 'ID');
    NULL when the value is blank or not recognisable, so that `country = 'ID'` is the only
    spelling a segment needs. The spellings are seeds/country_aliases.csv (alpha-2 and
    alpha-3 codes and English names from iso-codes, ISO 3166-1, plus a few colloquial
    aliases), read through the generated macro country_aliases(); the Python twin
    (segmentation.language.normalize) reads the same file. Matching ignores case,
    punctuation and repeated spaces. One jsonb constant, looked up by key: a binary search
    per row, where a CASE would try the spellings one by one. -#}
{% macro normalize_country(column) -%}
    ({{ country_alias_jsonb() }} ->> btrim(regexp_replace(lower({{ column }}), '[^[:alnum:]]+', ' ', 'g')))
{%- endmacro %}

{#- The alias table as a jsonb literal (aliases and codes are checked by the generator: no
    quote can occur; doubled anyway). -#}
{% macro country_alias_jsonb() -%}
    '{{ tojson(country_aliases()) | replace("'", "''") }}'::jsonb
{%- endmacro %}
