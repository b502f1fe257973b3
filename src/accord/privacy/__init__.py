"""Privacy and governance: consent, enforcement, export, erasure with suppression, retention, access audit.

Every table declares in ``accord.privacy.registry`` how a person's rows are found in it; erasure,
export and retention work from that one registry.
"""
