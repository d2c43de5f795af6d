"""SNS: e-mail subscriptions delivered to an SMTP relay."""
