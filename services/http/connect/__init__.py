"""Smartcar Connect over HTTP: `/oauth/authorize` and `/oauth/reauthenticate`, the screens, the redirect back.

- flow.py: the flow's server-side state in Redis, and the grant form's one-time nonce;
- request.py: the authorize and re-authenticate requests, validated before a flow exists;
- pages.py: each screen's template context, and the error page;
- signin.py: what a sign-in leads to (the grant screen, an error redirect, or a code at once);
- approve.py: the grant screen's Allow, re-checked and written;
- redirect.py: the redirect back to the app (only ever its validated redirect URI);
- routes.py: the routes, one step each.
"""

from services.http.connect.routes import router

__all__ = ["router"]
