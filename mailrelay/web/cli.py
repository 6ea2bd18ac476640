"""`mailrelay web` (serve the console) and `mailrelay web adduser NAME`."""
from __future__ import annotations

import argparse


def add_web_commands(commands) -> None:
    web = commands.add_parser("web", help="the editors' console: serve it, or add a user")
    actions = web.add_subparsers(dest="web_command")
    actions.add_parser("serve", help="serve the console on [web] listen (the default)")
    adduser = actions.add_parser("adduser", help="add an editor (or set a new password): asks for the password")
    adduser.add_argument("name", metavar="NAME")
    adduser.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    web.set_defaults(handler=_web)


def _web(arguments: argparse.Namespace) -> int:
    if arguments.web_command == "adduser":
        from mailrelay.web.users import adduser

        return adduser(arguments.config, arguments.name, arguments.password_stdin)
    return serve(arguments.config)


def serve(config) -> int:
    import waitress

    from mailrelay.i18n import set_language
    from mailrelay.logs import get_logger
    from mailrelay.web.app import create_app

    set_language("de")  # the console is the editors': German, whatever the server's locale
    app = create_app(config)
    web = app.extensions["mailrelay"].web
    get_logger().info("web.listening", address=f"{web.host}:{web.port}")
    waitress.serve(app, host=web.host, port=web.port, threads=4, ident="mailrelay",
                   trusted_proxy="127.0.0.1" if web.behind_proxy else None,
                   trusted_proxy_headers={"x-forwarded-proto", "x-forwarded-for"} if web.behind_proxy else None)
    return 0
