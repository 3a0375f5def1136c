-- Upgrades an install made before serving contract 2 (docs/serving-contract.md) to the
-- per-account publish log and history, and older history tables to their current shape. Run
-- by `segments db init` after serving.sql (which creates the current shape on a fresh
-- install). Each step checks the catalog first, so on an
-- install that is already current this takes no lock on any table and waits for no publish.
do $upgrade$
begin
    if not exists (
        select 1 from information_schema.columns
        where
            table_schema = 'segments_serving'
            and table_name = 'publish_log'
            and column_name = 'account_id'
    ) then
        alter table segments_serving.publish_log
        add column if not exists account_id text,
        add column if not exists accepted_by text,
        add column if not exists accept_reason text;
        alter table segments_serving.publish_log
        drop constraint if exists publish_log_status;
        alter table segments_serving.publish_log
        add constraint publish_log_status check (
            status in ('published', 'partial', 'accepted', 'failed')
        );
    end if;

    if not exists (
        select 1 from information_schema.columns
        where
            table_schema = 'segments_history'
            and table_name = 'recorded_dates'
            and column_name = 'account_id'
    ) then
        -- A recorded date of the old shape covered every account: it becomes one row per
        -- account that date recorded sizes for, with that account's own counts.
        alter table segments_history.recorded_dates
        add column if not exists account_id text;
        alter table segments_history.recorded_dates
        drop constraint if exists recorded_dates_pkey;
        insert into segments_history.recorded_dates
        (account_id, as_of, run_id, recorded_at, entered, exited)
        select
            s.account_id,
            r.as_of,
            r.run_id,
            r.recorded_at,
            sum(s.entered)::integer,
            sum(s.exited)::integer
        from segments_history.recorded_dates as r
        inner join segments_history.segment_sizes as s on r.as_of = s.as_of
        where r.account_id is null
        group by s.account_id, r.as_of, r.run_id, r.recorded_at;
        delete from segments_history.recorded_dates where account_id is null;
        alter table segments_history.recorded_dates
        alter column account_id set not null;
        alter table segments_history.recorded_dates
        add primary key (account_id, as_of);
    end if;

    -- membership_state's date was a column every row carried, so each date rewrote every
    -- row; the date is the account's latest recorded_dates row, and a date now changes only
    -- the rows that changed.
    if exists (
        select 1 from information_schema.columns
        where
            table_schema = 'segments_history'
            and table_name = 'membership_state'
            and column_name = 'as_of'
    ) then
        alter table segments_history.membership_state drop column as_of;
    end if;

    if to_regclass('segments_control.audits') is not null and not exists (
        select 1 from information_schema.columns
        where
            table_schema = 'segments_control'
            and table_name = 'audits'
            and column_name = 'failed_accounts'
    ) then
        alter table segments_control.audits
        add column if not exists failed_accounts jsonb not null default '{}'::jsonb;
    end if;
end
$upgrade$;
