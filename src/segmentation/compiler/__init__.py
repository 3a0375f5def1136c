"""The compiler: validated definitions -> a compiled plan -> generated dbt files."""
