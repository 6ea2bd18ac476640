"""The editors' console: a small server-rendered web page for the queues, the trail and trying a rule.

Flask (routing, signed-cookie sessions, Jinja2 already here) served by waitress (a pure-Python WSGI
server, threads, no build step): both small and well kept. The console reads the relay's state read-only;
its only writes are the editors' requests (release, drop), recorded as the commands record them, which
the next poll carries out. Pages: overview, history, mail, queues, rule trial, explain."""

# Pages (endpoint: path). Every page but the login and the health endpoint needs a session; every
# state-changing request (POST, except the login) carries the hidden field `csrf_token`.
#   auth.login: GET/POST /login (username, password)     auth.logout: POST /logout     auth.health: GET /healthz
#   overview.index: GET /                                 history.index: GET /verlauf (sender, subject, desk,
#   history.mail: GET /mail/<mail_id>                       kind, outcome, since, until; <table id="results">)
#   queues.review: GET /pruefung, queues.quarantine: GET /quarantaene (<table id="queue">, rows data-mail-id);
#     POST /quarantaene/<id>/freigeben (desk, optional), /quarantaene/<id>/verwerfen (reason),
#     POST /pruefung/<id>/freigeben (desk), /pruefung/<id>/erledigt (reason, optional)
#   trial.rules: GET/POST /regel (routing or file; <ul id="problems">, <table id="diff">: Mail, vorher, nachher)
#   trial.explain: GET/POST /mail-pruefen (eml; <section id="explain">)
# Session keys: editor (the name), csrf (the token), seen (last activity, epoch seconds).
