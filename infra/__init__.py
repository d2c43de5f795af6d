"""The AWS resources the DAGs need, declared once in ``pipelines.yaml``."""
