-- Tables and views of one schema whose names start with one of the given prefixes.
select
    c.relname,
    c.relkind
from pg_class as c
inner join pg_namespace as n on c.relnamespace = n.oid
where
    n.nspname = %(schema)s
    and c.relkind in ('r', 'p', 'v', 'm')
    and exists (
        select 1 from unnest(%(prefixes)s::text[]) as p (prefix)
        where starts_with(c.relname, p.prefix)
    )
