"""API tokens and roles, and secret redaction."""
