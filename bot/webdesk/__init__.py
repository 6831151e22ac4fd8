"""The counsellors' web desk (``python -m bot desk``; docs/desk.md), in layers:

- ``routes``: HTTP (aiohttp), server-rendered HTML, live updates over Server-Sent Events,
  security headers, session and CSRF checks;
- ``service``: what each action does, through the handoff core and the counsellor desk
  (bot/handoff.py, bot/desk.py) that the terminal console and the Telegram group use too;
- ``permissions``: who may open and do what (pure rules);
- ``auth``: accounts, argon2 passwords, TOTP, lock-out, sessions;
- ``data``: the desk's own tables and SQL; ``canned``: canned replies and the case taxonomy.
"""
