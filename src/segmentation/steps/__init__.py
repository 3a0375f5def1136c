"""The pipeline steps (build, audit, publish, history, status) that the CLI and the DAG call."""
