"""IAM: policy evaluation wrapped around every request (identity, resource and key policies)."""
