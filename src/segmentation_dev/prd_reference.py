"""The PRD's example segments written by hand as correlated subqueries: one `exists` or
scalar subquery per activity condition, per segment, the way they would be written without
the compiler.

Two users, one copy: the tests compare the compiled segments' members with these (an
independent oracle), and `make bench` times these against the one-pass feature models (the
naive baseline). Keys are the template keys under segment_defs/_all/.
"""

from __future__ import annotations

import datetime as dt

from segmentation.language.gating import ENTITLED_PACKAGES as ENTITLED


def reference_conditions(as_of: dt.date) -> dict[str, str]:
    """segment key -> SQL condition over contact `c` and account `acc`."""
    STG = "segments_staging"
    ASOF = f"date '{as_of.isoformat()}'"

    def day(col: str) -> str:
        return f"cast(({col} at time zone acc.timezone) as date)"

    def rows(table: str, alias: str, time_col: str, where: str) -> str:
        """Rows of the contact in `table`, dated on or before the as-of date (or undated)."""
        return (
            f"from {STG}.{table} as {alias} where {alias}.account_id = c.account_id "
            f"and {alias}.contact_id = c.contact_id "
            f"and ({alias}.{time_col} is null or {day(f'{alias}.{time_col}')} <= {ASOF}) "
            f"and ({where})"
        )

    def within(alias: str, col: str, days: int) -> str:
        return f"{day(f'{alias}.{col}')} between {ASOF} - {days} and {ASOF}"

    COMPLETED_ORDERS = "o.status = 'completed'"
    HAND_SQL = {
        "open_deal_over_30_days": "exists (select 1 "
        + rows(
            "stg_crm__deals",
            "d",
            "created_at",
            f"d.status = 'open' and {day('d.created_at')} < {ASOF} - 30",
        )
        + ")",
        "no_conversation_90_days": "not exists (select 1 "
        + rows("stg_crm__conversations", "v", "started_at", within("v", "started_at", 90))
        + ")",
        "active_leads": "c.lifecycle_stage in ('lead', 'marketing_qualified_lead', "
        "'sales_qualified_lead') and (exists (select 1 "
        + rows("stg_crm__conversations", "v", "started_at", within("v", "started_at", 30))
        + ") or exists (select 1 "
        + rows(
            "stg_crm__campaign_events",
            "e",
            "occurred_at",
            "e.event_type in ('clicked', 'replied') and " + within("e", "occurred_at", 30),
        )
        + "))",
        "loyal_buyers": "(select count(*) "
        + rows(
            "stg_crm__orders",
            "o",
            "ordered_at",
            COMPLETED_ORDERS + " and " + within("o", "ordered_at", 365),
        )
        + ") >= 3 and coalesce((select sum(o.amount) "
        + rows(
            "stg_crm__orders",
            "o",
            "ordered_at",
            COMPLETED_ORDERS + " and " + within("o", "ordered_at", 365),
        )
        + "), 0) >= 1000000 and exists (select 1 "
        + rows(
            "stg_crm__orders",
            "o",
            "ordered_at",
            COMPLETED_ORDERS + " and " + within("o", "ordered_at", 90),
        )
        + ")",
        "churn_risk": "c.lifecycle_stage in ('customer', 'evangelist') and (select max("
        + day("o.ordered_at")
        + ") "
        + rows("stg_crm__orders", "o", "ordered_at", COMPLETED_ORDERS)
        + f") < {ASOF} - 90 and not exists (select 1 "
        + rows("stg_crm__conversations", "v", "started_at", within("v", "started_at", 60))
        + ")",
        "clicked_campaign_cmp_123": "exists (select 1 "
        + rows(
            "stg_crm__campaign_events",
            "e",
            "occurred_at",
            "e.event_type = 'clicked' and e.campaign_id = 'cmp_123'",
        )
        + ")",
        "frequent_tickets_30_days": "(select count(*) "
        + rows("stg_crm__tickets", "t", "created_at", within("t", "created_at", 30))
        + ") >= 3",
        "big_won_deals_this_year": "coalesce((select sum(d.amount) "
        + rows(
            "stg_crm__deals",
            "d",
            "created_at",
            f"d.status = 'won' and d.currency = 'IDR' and extract(year from {day('d.closed_at')}) "
            f"= {as_of.year}",
        )
        + "), 0) > 50000000",
        "retail_companies": "exists (select 1 from "
        f"{STG}.stg_crm__contact_companies as l join {STG}.stg_crm__companies as co "
        "on co.account_id = l.account_id and co.company_id = l.company_id "
        "where l.account_id = c.account_id and l.contact_id = c.contact_id "
        f"and (co.created_at is null or {day('co.created_at')} <= {ASOF}) "
        "and co.industry = 'retail')",
        "stopped_buying": "(select count(*) "
        + rows(
            "stg_crm__orders",
            "o",
            "ordered_at",
            COMPLETED_ORDERS + " and " + within("o", "ordered_at", 90),
        )
        + ") >= 2 and not exists (select 1 "
        + rows(
            "stg_crm__orders",
            "o",
            "ordered_at",
            COMPLETED_ORDERS + " and " + within("o", "ordered_at", 30),
        )
        + ")",
    }
    return HAND_SQL


def reference_sql(as_of: dt.date) -> dict[str, str]:
    """segment key -> a query of the (account_id, contact_id) members at `as_of`."""
    stg = "segments_staging"
    as_of_sql = f"date '{as_of.isoformat()}'"
    created = f"cast((c.created_at at time zone acc.timezone) as date) <= {as_of_sql}"
    return {
        key: f"""
        select c.account_id, c.contact_id
        from {stg}.stg_crm__contacts as c
        inner join {stg}.stg_crm__accounts as acc on acc.account_id = c.account_id
        where acc.package in {ENTITLED}
          and (c.created_at is null or {created})
          and {condition}
        """
        for key, condition in reference_conditions(as_of).items()
    }
