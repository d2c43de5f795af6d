"""S3: the event notifications moto leaves out."""
