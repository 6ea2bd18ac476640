"""The editors' console: a small server-rendered web page for the queues, the trail and trying a rule.

Flask (routing, signed-cookie sessions, Jinja2 already here) served by waitress (a pure-Python WSGI
server, threads, no build step): both small and well kept. The console reads the relay's state read-only;
its only writes are the editors' requests (release, drop), recorded as the commands record them, which
the next poll carries out. Pages: overview, history, mail, queues, rule trial, explain."""
