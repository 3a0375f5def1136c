"""The named RFM segments (docs/analytics.md, "## RFM").

The dbt model `rfm_segment_map` maps each (r_score, fm_score) cell to one of the grid's
segments; contacts without a completed order are NO_ORDERS. `rfm.segment` values are
validated against RFM_SEGMENTS; tests/dbt/test_rfm.py keeps it equal to the model's.
"""

from __future__ import annotations

NO_ORDERS = "no_orders"

# Best first, as the shipped priority group (segment_defs/_all/_groups/rfm.yml) orders them.
GRID_SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose",
    "hibernating",
    "lost",
)
RFM_SEGMENTS = (*GRID_SEGMENTS, NO_ORDERS)
