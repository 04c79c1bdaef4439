"""The public transparency page a node serves at ``/public``: no login, no JavaScript.

Server-rendered HTML (Jinja2) of the public role's subset: holdings by
cooperative approach and vintage, transfers in and out, the
corresponding-adjustment ledger, the Party's current authorisations, and links
to the AEF. It shows no account and no account holder.
"""

from registry.entrypoints.public.routes import PUBLIC_PATH, router

__all__ = ["PUBLIC_PATH", "router"]
