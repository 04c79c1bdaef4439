"""The pure Article 6.2 ledger of one registry node.

Accounts, cooperative approaches, authorisations, serial blocks, corresponding
adjustments and the audit trail, with every rule as a function that takes
values and returns decisions or raises a :class:`registry.domain.errors.DomainError`.
Nothing here performs I/O or reads the clock.
"""
