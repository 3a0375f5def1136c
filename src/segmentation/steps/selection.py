"""The dbt selections the steps share: one definition for build, clusters and analytics."""

from __future__ import annotations

# Serving tables are written by publish (one transaction), never by dbt.
SERVING_PATH = "models/serving"
# The performance marts read segments_history, so they are built after record_history
# (pipeline.build_analytics), not with the candidate.
ANALYTICS_PATH = "models/analytics/performance"
BUILD_EXCLUDED_PATHS = (SERVING_PATH, ANALYTICS_PATH)

SERVING_MODELS = f"path:{SERVING_PATH}"
ANALYTICS_MODELS = f"path:{ANALYTICS_PATH}"
BUILD_EXCLUDE = " ".join(f"path:{path}" for path in BUILD_EXCLUDED_PATHS)
