"""Warehouse-native customer segmentation: YAML segment definitions compiled to dbt models."""

__version__ = "0.1.0"
