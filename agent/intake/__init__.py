"""Intake: watching inboxes and deciding which entries are files to enqueue."""
