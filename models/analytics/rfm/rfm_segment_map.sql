{#- The score-to-segment map of the standard RFM segments (docs/analytics.md, "## RFM"):
    one row per (r_score, fm_score) cell of the 5 x 5 grid, fm_score being the rounded mean
    of f_score and m_score (see rfm_scores). Every cell has exactly one segment, so the map
    is exclusive and exhaustive; contacts without a completed order are 'no_orders' and are
    not in the grid. segmentation.language.rfm.RFM_SEGMENTS lists the same names (a test
    keeps them equal). -#}
with

grid (r_score, fm_score, rfm_segment) as (
    values
    (5, 1, 'new_customers'),
    (5, 2, 'potential_loyalist'),
    (5, 3, 'potential_loyalist'),
    (5, 4, 'champions'),
    (5, 5, 'champions'),
    (4, 1, 'promising'),
    (4, 2, 'potential_loyalist'),
    (4, 3, 'potential_loyalist'),
    (4, 4, 'loyal'),
    (4, 5, 'loyal'),
    (3, 1, 'about_to_sleep'),
    (3, 2, 'about_to_sleep'),
    (3, 3, 'need_attention'),
    (3, 4, 'loyal'),
    (3, 5, 'loyal'),
    (2, 1, 'hibernating'),
    (2, 2, 'hibernating'),
    (2, 3, 'at_risk'),
    (2, 4, 'at_risk'),
    (2, 5, 'cannot_lose'),
    (1, 1, 'lost'),
    (1, 2, 'hibernating'),
    (1, 3, 'at_risk'),
    (1, 4, 'at_risk'),
    (1, 5, 'cannot_lose')
),

final as (
    select
        cast(r_score as integer) as r_score,
        cast(fm_score as integer) as fm_score,
        cast(rfm_segment as text) as rfm_segment
    from grid
)

select * from final
