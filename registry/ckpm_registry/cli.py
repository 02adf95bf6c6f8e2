"""``ckpm-registry``: run the service, manage tokens and owners.

    ckpm-registry serve --index /srv/ckpm-index.git --tokens tokens.toml [--host 127.0.0.1] [--port 8080]
    ckpm-registry token add LOGIN --tokens tokens.toml        # prints a new token once
    ckpm-registry token remove LOGIN --tokens tokens.toml
    ckpm-registry owners list|add|remove NAME [LOGIN...] --index /srv/ckpm-index.git
    ckpm-registry owners rebuild --index /srv/ckpm-index.git   # first publisher of each name, from git

A click command line in ckpm's style: an operator's mistake (a missing index, a port in use, an
unreadable tokens file) is one ``error:`` line with a ``hint:`` and ckpm's exit codes (1 a bad
input, 64 a wrong command line, 130 interrupted; ``ckpm.errors.EXIT_CODES``); ``-v`` adds the
traceback.
"""
from __future__ import annotations

import errno
import functools
import socket
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from ckpm.errors import CkpmError, UsageError
from ckpm_registry.errors import OperatorError


def _verbose() -> int:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return int(root.obj or 0) if root is not None and isinstance(root.obj, int) else 0


def operator_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The errors an operator can cause, as one ``error:`` line and a hint (traceback only with -v)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ckpm_registry.errors import IndexStoreError, TokensFileError

        try:
            return fn(*args, **kwargs)
        except IndexStoreError as e:
            raise OperatorError(str(e), hint=e.hint or "--index names a local bare git repository "
                                                       "whose branch holds config.json") from e
        except TokensFileError as e:
            raise OperatorError(str(e), hint="--tokens names a TOML file of [users.LOGIN] tables with "
                                             "token_sha256 (made by `ckpm-registry token add`)") from e
        except UnicodeDecodeError as e:
            raise OperatorError(f"a file is not UTF-8 text ({e.reason})",
                                hint="--tokens names a TOML file made by `ckpm-registry token add`") from e
        except OSError as e:
            where = f": {e.filename}" if getattr(e, "filename", None) else ""
            raise OperatorError(f"{e.strerror or e}{where}") from e

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """ckpm-registry: a registry service over a git index."""
    ctx.obj = verbose


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise OperatorError(f"port {port} of {host} is in use",
                                hint="stop the other service, or pick another --port (0 picks a free one)") from e
        if e.errno == errno.EACCES:
            raise OperatorError(f"not allowed to listen on port {port} of {host}",
                                hint="ports below 1024 need privileges: pick a --port from 1024 up") from e
        raise OperatorError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                            hint="--host is an address of this machine (127.0.0.1, ::1, 0.0.0.0)") from e
    except (socket.gaierror, OverflowError, UnicodeError) as e:
        sock.close()
        raise OperatorError(f"cannot listen on {host}:{port}: {e}",
                            hint="--host is an address of this machine (127.0.0.1, ::1, 0.0.0.0)") from e
    return sock


@cli.command()
@click.option("--index", required=True, help="The index: a local bare git repository.")
@click.option("--tokens", type=click.Path(dir_okay=False, path_type=Path),
              help="The tokens file (tokens.toml); without it nobody can publish.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="0 picks a free port (printed).")
@click.option("--public-url", default="", help="The URL clients use (behind a proxy); default http://HOST:PORT.")
@click.option("--state", type=click.Path(file_okay=False, path_type=Path),
              help="Owners and lock (default <index.git>/ckpm-registry).")
@click.option("--export", type=click.Path(file_okay=False, path_type=Path),
              help="The exported index files (default <state>/export).")
@click.option("--database", default=None,
              help="The results database: postgresql://USER@HOST:PORT/NAME (default: SQLite, results.sqlite "
                   "in the state folder).")
@click.option("--max-body", type=click.IntRange(1), default=1 << 20, show_default=True,
              help="Largest request body in bytes.")
@click.option("--max-age", type=click.IntRange(0), default=60, show_default=True,
              help="Cache-Control max-age of index files (s).")
@click.option("--refresh", type=click.FloatRange(0), default=1.0, show_default=True,
              help="How often reads check for commits made outside this process (s).")
@click.option("--limit-concurrency", type=click.IntRange(1), default=1000, show_default=True,
              help="Most connections at once.")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-* headers are trusted.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]),
              default="info", show_default=True, help="How much the server logs.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log every request.")
@operator_errors
def serve(index: str, tokens: Path | None, host: str, port: int, public_url: str, state: Path | None,
          export: Path | None, database: str | None, max_body: int, max_age: int, refresh: float,
          limit_concurrency: int, forwarded_allow_ips: str, log_level: str, access_log: bool) -> None:
    """Run the service."""
    import uvicorn

    from ckpm_registry.app import RegistryConfig, create_app

    sock = _bind(host, port)
    try:
        port = sock.getsockname()[1]
        shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
        public = public_url or f"http://{shown}:{port}"
        config = RegistryConfig(index=index, tokens=tokens, state=state, export=export, public_url=public,
                                max_body=max_body, max_age=max_age, refresh=refresh, database=database)
        app = create_app(config)
    except BaseException:
        sock.close()
        raise
    click.echo(f"ckpm-registry: serving {app.state.registry.store.gitdir} at http://{shown}:{port} "
               f"(public URL {public}; files exported to {app.state.registry.store.export})")
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=access_log,
                                           proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips,
                                           timeout_keep_alive=5, limit_concurrency=limit_concurrency))
    server.run(sockets=[sock])


tokens_option = click.option("--tokens", type=click.Path(dir_okay=False, path_type=Path), required=True,
                             help="The tokens file (tokens.toml).")


@cli.group()
def token() -> None:
    """Add or remove users' tokens."""


def _login(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ckpm_registry.tokens import LOGIN_RE, valid_login

    if not valid_login(value):
        raise click.BadParameter(f"{value!r} is not a login ({LOGIN_RE.pattern})")
    return value


@token.command("add")
@click.argument("login", callback=_login)
@tokens_option
@operator_errors
def token_add(login: str, tokens: Path) -> None:
    """Make a new token for LOGIN and print it (once; only its sha256 is stored)."""
    from ckpm_registry.tokens import add_token

    new = add_token(tokens, login)
    click.echo(new)
    click.echo(f"token for {login} added to {tokens} (only its sha256 is stored; this is the only time it is shown)",
               err=True)


@token.command("remove")
@click.argument("login", callback=_login)
@tokens_option
@operator_errors
def token_remove(login: str, tokens: Path) -> None:
    """Remove every token of LOGIN."""
    from ckpm_registry.tokens import remove_user

    if not remove_user(tokens, login):
        raise OperatorError(f"{login} has no token in {tokens}",
                            hint="`ckpm-registry token add LOGIN --tokens FILE` makes one")
    click.echo(f"every token of {login} removed from {tokens}", err=True)


index_option = click.option("--index", required=True, help="The index: a local bare git repository.")
state_option = click.option("--state", type=click.Path(file_okay=False, path_type=Path),
                            help="Owners and lock (default <index.git>/ckpm-registry).")


@cli.group()
def owners() -> None:
    """List or change the owners of a name (operator)."""


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ckpm.model.entry import valid_name

    if not valid_name(value):
        raise click.BadParameter(f"{value!r} is not a component name")
    return value


def _logins(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for v in value:
        _login(ctx, param, v)
    return value


def _change_owners(index: str, state: Path | None, name: str, logins: tuple[str, ...], how: str) -> None:
    from ckpm_registry.store import IndexStore

    store = IndexStore(index, state=state)
    with store.writing():
        current = store.owners.of(name)
        if how == "add":
            current = sorted(set(current) | set(logins))
        elif how == "remove":
            current = sorted(set(current) - set(logins))
        if how != "list":
            store.owners.set(name, current)
    click.echo(" ".join(current))


@owners.command("list")
@click.argument("name", callback=_name)
@index_option
@state_option
@operator_errors
def owners_list(name: str, index: str, state: Path | None) -> None:
    """Print the owners of NAME."""
    _change_owners(index, state, name, (), "list")


@owners.command("add")
@click.argument("name", callback=_name)
@click.argument("logins", nargs=-1, required=True, callback=_logins)
@index_option
@state_option
@operator_errors
def owners_add(name: str, logins: tuple[str, ...], index: str, state: Path | None) -> None:
    """Add LOGINS to the owners of NAME."""
    _change_owners(index, state, name, logins, "add")


@owners.command("remove")
@click.argument("name", callback=_name)
@click.argument("logins", nargs=-1, required=True, callback=_logins)
@index_option
@state_option
@operator_errors
def owners_remove(name: str, logins: tuple[str, ...], index: str, state: Path | None) -> None:
    """Remove LOGINS from the owners of NAME."""
    _change_owners(index, state, name, logins, "remove")


@owners.command("rebuild")
@index_option
@state_option
@operator_errors
def owners_rebuild(index: str, state: Path | None) -> None:
    """Give each name without owners its first publisher, from the index's history."""
    from ckpm_registry.store import IndexStore

    store = IndexStore(index, state=state)
    with store.writing():
        found = first_publishers(store)
        current = store.owners.all()
        for name, login in found.items():
            current.setdefault(name, [login])
        store.owners.write_all(current)
    click.echo(f"{len(found)} names in the history; owners of {len(current)} names in {store.owners.path}")


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; exit codes as ``ckpm``'s (1 a bad input, 64 usage, 130 interrupted)."""
    from ckpm.report import escape_control

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = 0
    for a in args:  # the group's own -v, before the command's name
        if not a.startswith("-"):
            break
        verbose += a.count("v") if a.startswith("-v") else a == "--verbose"
    try:
        cli.main(args=args, prog_name="ckpm-registry", standalone_mode=False)
    except click.exceptions.UsageError as e:
        e.show()
        return UsageError.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except CkpmError as e:
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(escape_control(e.render(verbose=bool(verbose))), err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
