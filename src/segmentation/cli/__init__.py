"""The `segments` command line. It calls the pipeline steps and nothing else."""
