"""Outgoing mail: the relay, the accept pipeline, the durable outbox and delivery upstream."""
