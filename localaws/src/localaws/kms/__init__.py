"""KMS: key policies and via-service grants for encrypted resources."""
