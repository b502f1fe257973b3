"""Events collected through the API: real-time identity stitching and accounts from group calls.

``stitch_signals`` runs inside the transaction that stores identify, alias and group messages, so
the customer they name is known (and indexed in ``customer_identifiers``) by the time the request
is answered.
"""

from accord.events.rules import Identifier, StitchRules
from accord.events.stitching import Signal, Stitched, stitch_signals

__all__ = ["Identifier", "Signal", "StitchRules", "Stitched", "stitch_signals"]
