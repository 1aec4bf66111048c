"""Signals of the consent ledger, for the parts that must follow it."""

from django.dispatch import Signal

# Sent inside the transaction that appends a refusal or a withdrawal to the ledger, with
# ``record`` and ``customer`` / ``operator`` / ``call`` (whichever the record is about).
# The recording pipeline purges what the consent no longer covers.
consent_taken_back = Signal()
