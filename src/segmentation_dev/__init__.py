"""Developer tools: the local cluster, demo data, benchmarks, the GX project and the PRD reference.

Not part of the runtime package: nothing in `segmentation` imports this package.
"""
