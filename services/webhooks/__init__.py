"""Webhooks: definitions, subscriptions, triggers and the delivery worker (docs/webhooks.md)."""
