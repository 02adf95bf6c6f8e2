"""What every command module of the CLI shares: the run's context, the --json envelope,
error handling (one clear line and an exit code; a traceback only with -v)."""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click


@dataclass
class CliContext:
    project: Path | None
    index: str | None
    verbose: int
    offline: bool
    cache_dir: Path | None
    command: str = ""
    reporter: Any = None

    def settings(self, *, as_json: bool = False, **kw: Any) -> Any:
        """The settings of this run (global flags and the environment, read once)."""
        from ckpm.cli.output import ConsoleReporter
        from ckpm.ops.session import make_settings

        if self.reporter is None:
            self.reporter = ConsoleReporter(verbose=self.verbose, quiet=as_json)
        return make_settings(index_url=self.index, cache_dir=self.cache_dir, offline=self.offline,
                             reporter=self.reporter, **kw)

    def workspace(self, *, as_json: bool = False, **kw: Any) -> Any:
        from ckpm.ops.session import open_workspace

        return open_workspace(self.project, self.settings(as_json=as_json, **kw))

    def project_root(self, *, as_json: bool = False) -> Path:
        """The project's folder (the nearest ckpm.toml's), the manifest unread; sets up the
        reporter for warnings."""
        from ckpm.cli.output import ConsoleReporter
        from ckpm.ops.session import project_root

        if self.reporter is None:
            self.reporter = ConsoleReporter(verbose=self.verbose, quiet=as_json)
        return project_root(self.project)

    def indexes(self, *, as_json: bool = False, timeout: float | None = None) -> list[Any]:
        """The project's indexes when inside a project, else --index / the embedded index;
        with ``timeout``, every read of theirs ends within that many seconds from now."""
        from ckpm.ops.session import indexes

        return list(indexes(self.settings(as_json=as_json), self.project, timeout=timeout))

    def warnings(self) -> list[str]:
        return list(self.reporter.warnings) if self.reporter is not None else []


def emit(c: CliContext, data: Any) -> None:
    """The --json envelope of a successful command."""
    from ckpm.cli.output import emit_json, envelope

    emit_json(envelope(c.command, data, c.warnings()))


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn CkpmError into one clear message and an exit code (traceback only with -v)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ckpm.errors import CkpmError

        ctx = click.get_current_context()
        obj = ctx.find_object(CliContext)
        verbose = obj.verbose if obj is not None else 0
        if obj is not None:
            obj.command = ctx.command_path.partition(" ")[2] or ctx.info_name or ""
        as_json = bool(kwargs.get("as_json"))
        try:
            out = fn(*args, **kwargs)
            if obj is not None and obj.reporter is not None:
                obj.reporter.finish()
            return out
        except CkpmError as e:
            _fail(obj, verbose, as_json, e.to_dict(), e.render(verbose=bool(verbose)), e.exit_code)
        except OSError as e:
            what = f"{e.strerror or e}" + (f": {e.filename}" if getattr(e, "filename", None) else "")
            _fail(obj, verbose, as_json, {"code": "os", "error": what, "hint": None, "details": []},
                  f"error: {what}", 1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _fail(obj: CliContext | None, verbose: int, as_json: bool, err: dict[str, Any], text: str, code: int) -> None:
    from ckpm.report import escape_control

    if verbose:
        import traceback

        traceback.print_exc()
    if obj is not None and obj.reporter is not None:
        obj.reporter.finish()
    if as_json:
        from ckpm.cli.output import emit_json, error_envelope

        emit_json(error_envelope(obj.command if obj else "", err, obj.warnings() if obj else []))
    click.echo(escape_control(text), err=True)
    sys.exit(code)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")


pass_ctx = click.make_pass_decorator(CliContext)
