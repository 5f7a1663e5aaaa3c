"""Notifications: events derived from status writes, delivered as CloudEvents to sinks."""
