"""Glue: crawlers that really catalog S3, schema inference and policies."""
