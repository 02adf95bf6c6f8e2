"""``ckpm-registry``: run the service, manage tokens and owners.

    ckpm-registry serve --index /srv/ckpm-index.git --tokens tokens.toml [--host 127.0.0.1] [--port 8080]
    ckpm-registry token add LOGIN --tokens tokens.toml        # prints a new token once
    ckpm-registry token remove LOGIN --tokens tokens.toml
    ckpm-registry owners list|add|remove NAME [LOGIN...] --index /srv/ckpm-index.git
    ckpm-registry owners rebuild --index /srv/ckpm-index.git   # first publisher of each name, from git
"""
from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Sequence


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ckpm_registry.app import RegistryConfig, create_app

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    public = args.public_url or f"http://{host}:{port}"
    config = RegistryConfig(index=args.index, tokens=args.tokens, state=args.state, export=args.export,
                            public_url=public, max_body=args.max_body, max_age=args.max_age,
                            refresh=args.refresh, database=args.database)
    app = create_app(config)
    print(f"ckpm-registry: serving {app.state.registry.store.gitdir} at http://{host}:{port} "
          f"(public URL {public}; files exported to {app.state.registry.store.export})", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=args.access_log,
                                           proxy_headers=True, forwarded_allow_ips=args.forwarded_allow_ips,
                                           timeout_keep_alive=5, limit_concurrency=args.limit_concurrency))
    server.run(sockets=[sock])
    return 0


def _token(args: argparse.Namespace) -> int:
    from ckpm_registry.tokens import TokensFileError, add_token, remove_user

    try:
        if args.action == "add":
            token = add_token(args.tokens, args.login)
            print(token)
            print(f"token for {args.login} added to {args.tokens} (only its sha256 is stored; "
                  "this is the only time it is shown)", file=sys.stderr)
        else:
            if not remove_user(args.tokens, args.login):
                print(f"error: {args.login} has no token in {args.tokens}", file=sys.stderr)
                return 1
            print(f"every token of {args.login} removed from {args.tokens}", file=sys.stderr)
    except TokensFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _owners(args: argparse.Namespace) -> int:
    from ckpm.model.entry import valid_name

    from ckpm_registry.store import IndexStore, StoreError
    from ckpm_registry.tokens import valid_login

    try:
        store = IndexStore(args.index, state=args.state)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.action == "rebuild":
        with store.writing():
            found = first_publishers(store)
            current = store.owners.all()
            for name, login in found.items():
                current.setdefault(name, [login])
            store.owners.write_all(current)
        print(f"{len(found)} names in the history; owners of {len(current)} names in {store.owners.path}")
        return 0
    name = args.name
    if not name or not valid_name(name):
        print(f"error: {name!r} is not a component name", file=sys.stderr)
        return 2
    bad = [u for u in args.logins if not valid_login(u)]
    if bad:
        print(f"error: {bad[0]!r} is not a login", file=sys.stderr)
        return 2
    with store.writing():
        owners = store.owners.of(name)
        if args.action == "add":
            owners = sorted(set(owners) | set(args.logins))
        elif args.action == "remove":
            owners = sorted(set(owners) - set(args.logins))
        if args.action != "list":
            store.owners.set(name, owners)
    print(" ".join(owners))
    return 0


def first_publishers(store: "object") -> dict[str, str]:
    """name → the author of the oldest "Publish NAME …" commit of the index (the service
    authors each commit with the publishing login)."""
    import pygit2
    from pygit2.enums import SortMode

    from ckpm_registry.store import IndexStore

    assert isinstance(store, IndexStore)
    repo = pygit2.Repository(str(store.gitdir))
    out: dict[str, str] = {}
    tip = repo.lookup_reference(store._branch).resolve().target
    for c in repo.walk(tip, SortMode.TOPOLOGICAL | SortMode.REVERSE):
        words = c.message.split()
        if len(words) >= 2 and words[0] == "Publish" and words[1] not in out and c.author.email.endswith(
                "@ckpm-registry"):
            out[words[1]] = c.author.name
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ckpm-registry", description="A ckpm registry service over a git index.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the service")
    s.add_argument("--index", required=True, help="the index: a local bare git repository")
    s.add_argument("--tokens", type=Path, help="the tokens file (tokens.toml); without it nobody can publish")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080, help="0 picks a free port (printed)")
    s.add_argument("--public-url", default="", help="the URL clients use (behind a proxy); default http://HOST:PORT")
    s.add_argument("--state", type=Path, help="owners and lock (default <index.git>/ckpm-registry)")
    s.add_argument("--export", type=Path, help="the exported index files (default <state>/export)")
    s.add_argument("--database", help="the results database: postgresql://USER@HOST:PORT/NAME "
                                      "(default: SQLite, results.sqlite in the state folder)")
    s.add_argument("--max-body", type=int, default=1 << 20, help="largest request body in bytes (1 MiB)")
    s.add_argument("--max-age", type=int, default=60, help="Cache-Control max-age of index files (s)")
    s.add_argument("--refresh", type=float, default=1.0,
                   help="how often reads check for commits made outside this process (s)")
    s.add_argument("--limit-concurrency", type=int, default=1000)
    s.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                   help="proxies whose X-Forwarded-* headers are trusted")
    s.add_argument("--log-level", default="info")
    s.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    s.set_defaults(func=_serve)

    t = sub.add_parser("token", help="add or remove users' tokens")
    t.add_argument("action", choices=["add", "remove"])
    t.add_argument("login")
    t.add_argument("--tokens", type=Path, required=True)
    t.set_defaults(func=_token)

    o = sub.add_parser("owners", help="list or change the owners of a name (operator)")
    o.add_argument("action", choices=["list", "add", "remove", "rebuild"])
    o.add_argument("name", nargs="?")
    o.add_argument("logins", nargs="*")
    o.add_argument("--index", required=True)
    o.add_argument("--state", type=Path)
    o.set_defaults(func=_owners)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
