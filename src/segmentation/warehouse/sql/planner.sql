-- Planner settings for one transaction (set_config(..., true) ends with it).

-- name: no_nested_loops
-- The serving tables have no column statistics (security.py hides them from the readers), so
-- the planner takes a segment or an account for a handful of rows and would join it by
-- nested loops that probe the other side once per row (in history, once per member of the
-- account). Hash and merge joins stay linear at millions of members.
select set_config('enable_nestloop', 'off', true);

-- name: nested_loops
-- Back to the default, for the statements of the transaction that follow.
select set_config('enable_nestloop', 'on', true);
