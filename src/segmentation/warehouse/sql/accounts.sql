-- The accounts the definitions may name, and each one's package: the one read of the
-- accounts per compile (steps.definitions.compile), before dbt has staged this run's data.
-- The expressions are those of the staging macros normalize_id and normalize_picklist, so
-- both layers see the same account ids and packages (test_staging checks that they agree).
with

cleaned as (
    select
        nullif(
            regexp_replace(
                account_id, '^[[:space:]\u00a0\u200b]+|[[:space:]\u00a0\u200b]+$', '', 'g'
            ),
            ''
        ) as account_id,
        nullif(
            btrim(regexp_replace(lower(package), '[^a-z0-9]+', '_', 'g'), '_'), ''
        ) as package,
        _loaded_at
    from {raw}.accounts
)

select distinct on (account_id)
    account_id,
    package
from cleaned
where account_id is not null
order by account_id asc, _loaded_at desc
