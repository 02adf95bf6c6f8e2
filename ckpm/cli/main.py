"""``ckpm``: the command line. Every command is a few lines over the facade: ``ckpm.api``,
``ckpm.queries`` or a module of ``ckpm.ops`` (tests/test_layers.py allows nothing else).

Heavy modules (the resolver, pygit2, requests, rich) are imported inside the
commands, so ``ckpm --version`` and ``ckpm --help`` start fast.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from ckpm import __version__
from ckpm.cli.common import CliContext, emit, handle_errors, json_option, pass_ctx
from ckpm.settings import RESOLVE_MAX_ROUNDS, RESOLVE_SECONDS


#: commands kept in their own modules (over ckpm.cli.common, like this one): name → "module:attribute",
#: imported when a command line names one or help lists them, not by every command
LAZY_COMMANDS = {
    "results": "ckpm.cli.results:results", "tune": "ckpm.cli.tune:tune", "import": "ckpm.cli.ck:import_group",
    "publish": "ckpm.cli.registry:publish_cmd", "yank": "ckpm.cli.registry:yank_cmd",
    "login": "ckpm.cli.registry:login_cmd", "logout": "ckpm.cli.registry:logout_cmd",
    "container": "ckpm.cli.container:container", "artifact": "ckpm.cli.artifact:artifact_group",
    "cache": "ckpm.cli.cache:cache",
}


class _LazyGroup(click.Group):
    """The top-level group: a command of :data:`LAZY_COMMANDS` is imported when first asked for."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = LAZY_COMMANDS.get(cmd_name)
        if where is not None and cmd_name not in self.commands:
            from importlib import import_module

            module, attr = where.split(":")
            self.add_command(getattr(import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="ckpm")
@click.option("-C", "--project", type=click.Path(file_okay=False, path_type=Path), help="Run as if in DIR.")
@click.option("--index", envvar="CKPM_INDEX", help="Index URL (folder, file://, git+…, https://); overrides [[index]].")
@click.option("-v", "--verbose", count=True, help="More output; tracebacks on errors.")
@click.option("--offline", is_flag=True, envvar="CKPM_OFFLINE", help="Use only what is cached; no network.")
@click.option("--cache-dir", type=click.Path(path_type=Path), envvar="CKPM_CACHE_DIR", help="Cache folder.")
@click.pass_context
def cli(ctx: click.Context, project: Path | None, index: str | None, verbose: int, offline: bool,
        cache_dir: Path | None) -> None:
    """ckpm: a git-native package manager for research artifacts."""
    ctx.obj = CliContext(project, index, verbose, offline, cache_dir)




@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: the folder's name).")
@click.option("--description", default="", help="One line about the project.")
@json_option
@pass_ctx
@handle_errors
def init(c: CliContext, path: Path | None, name: str | None, description: str, as_json: bool) -> None:
    """Create a project: PATH/ckpm.toml with [project] and [dependencies]."""
    from ckpm.api import init_project

    target = path or c.project or Path(".")
    p = init_project(target, name or (path.name if path else None), description=description)
    if as_json:
        emit(c, {"manifest": str(p)})
        return
    click.echo(f"created {p}")


def _lock_opts(upgrade: bool = False, upgrade_package: tuple[str, ...] = (), target: tuple[str, ...] = (),
               prerelease: bool | None = None, max_rounds: int = RESOLVE_MAX_ROUNDS, timeout: float = RESOLVE_SECONDS,
               locked: bool = False) -> Any:
    from ckpm.api import LockOptions

    return LockOptions(upgrade=upgrade, upgrade_packages=upgrade_package, targets=list(target) or None,
                       prerelease=prerelease, max_rounds=max_rounds, timeout=timeout, locked=locked)


def _report(c: CliContext, outcome: Any, as_json: bool) -> None:
    from ckpm.cli.output import info

    if as_json:
        emit(c, outcome.to_dict())
        return
    for x in outcome.added:
        info(x, lead="+", style="green")
    for x in outcome.removed:
        info(x, lead="-", style="red")
    for x in outcome.updated:
        info(x, lead="~", style="yellow")
    state = "updated" if outcome.changed else "unchanged"
    n = len(outcome.lock.packages)
    info(f"{outcome.path.name} {state}: {n} package{'' if n == 1 else 's'} for {', '.join(outcome.lock.targets)}")


resolve_options = [
    click.option("--no-host", is_flag=True, help="Pretend nothing is installed: satisfy nothing from the host."),
    click.option("--target", "-t", multiple=True, help="Resolve for TARGET (repeatable; default: the host)."),
    click.option("--prerelease/--no-prerelease", default=None, help="Allow pre-releases."),
    click.option("--max-rounds", type=int, default=RESOLVE_MAX_ROUNDS, show_default=True, help="Resolver round budget."),
    click.option("--timeout", type=float, default=RESOLVE_SECONDS, show_default=True, help="Resolver time budget (s)."),
]


def with_resolve_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(resolve_options):
        fn = opt(fn)
    return fn


@cli.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--tags", help="Comma-separated tags the component must carry (a capability).")
@click.option("--no-tags", help="Comma-separated tags it must not carry.")
@click.option("--git", help="Git URL: versions are the repo's tags.")
@click.option("--subdir", help="Sub-folder of the git repo holding ckpm.toml.")
@click.option("--for-target", "for_targets", multiple=True, help="Only for these target patterns (e.g. 'linux-*').")
@click.option("--build", "build_dep", is_flag=True, help="A build-time dependency (resolved for the host).")
@click.option("--index-name", help="Take it from this [[index]] only.")
@with_resolve_options
@json_option
@pass_ctx
@handle_errors
def add(c: CliContext, specs: tuple[str, ...], tags: str | None, no_tags: str | None, git: str | None,
        subdir: str | None, for_targets: tuple[str, ...], build_dep: bool, index_name: str | None, no_host: bool,
        target: tuple[str, ...], prerelease: bool | None, max_rounds: int, timeout: float, as_json: bool) -> None:
    """Add dependencies (NAME, NAME@RANGE), resolve, and update ckpm.lock."""
    from ckpm import api

    reqs = [api.AddRequest(s, tags=tags, no_tags=no_tags, git=git, subdir=subdir, targets=for_targets,
                           kind="build" if build_dep else None, index=index_name) for s in specs]
    ws = c.workspace(as_json=as_json, no_host=no_host)
    ws.set_deadline(timeout)  # --timeout bounds the whole command: index reads and both searches
    out = api.add(ws, reqs,
                  lock_options=_lock_opts(target=target, prerelease=prerelease, max_rounds=max_rounds, timeout=timeout))
    _report(c, out, as_json)


@cli.command()
@click.argument("names", nargs=-1, required=True)
@json_option
@pass_ctx
@handle_errors
def remove(c: CliContext, names: tuple[str, ...], as_json: bool) -> None:
    """Remove dependencies and update ckpm.lock."""
    from ckpm import api

    _report(c, api.remove(c.workspace(as_json=as_json), names), as_json)


@cli.command()
@click.option("--check", is_flag=True, help="Exit non-zero if ckpm.lock is stale; write nothing.")
@click.option("--upgrade", "-U", is_flag=True, help="Ignore the existing pins.")
@click.option("--upgrade-package", "-P", multiple=True, help="Move this package's pin only (repeatable).")
@click.option("--locked", is_flag=True, help="Fail if the lock would change.")
@click.option("--allow-host-drift", is_flag=True, help="With --check/--locked: host differences are warnings.")
@with_resolve_options
@json_option
@pass_ctx
@handle_errors
def lock(c: CliContext, check: bool, upgrade: bool, upgrade_package: tuple[str, ...], locked: bool, allow_host_drift: bool,
         no_host: bool, target: tuple[str, ...], prerelease: bool | None, max_rounds: int, timeout: float,
         as_json: bool) -> None:
    """Resolve every dependency and write ckpm.lock."""
    from ckpm import api

    ws = c.workspace(as_json=as_json, no_host=no_host)
    ws.set_deadline(timeout)  # --timeout bounds the whole command: index reads and both searches
    if check:
        res = api.check(ws, targets=list(target) or None, allow_host_drift=allow_host_drift)
        _report_check(c, res, as_json)
        sys.exit(res.exit_code)
    opts = _lock_opts(upgrade, upgrade_package, target, prerelease, max_rounds, timeout, locked)
    opts.allow_host_drift = allow_host_drift
    out = api.lock(ws, opts)
    _report(c, out, as_json)


def _report_check(c: CliContext, res: Any, as_json: bool) -> None:
    from ckpm.cli.output import table
    from ckpm.report import escape_control

    c.reporter.finish()
    if as_json:
        from ckpm.cli.output import emit_json

        emit_json({**({"ok": True, "command": c.command, "data": res.to_dict(), "warnings": c.warnings()}),
                   "ok": res.exit_code == 0})
        return
    name = res.lock_path.name
    if res.problems:
        click.echo(f"{name} cannot be verified here:" if res.unverified == len(res.problems) else f"{name} is stale:",
                   err=True)
        for p in res.problems:
            click.echo(f"  - {escape_control(p)}", err=True)
        click.echo(f"hint: {escape_control(res.hint)}", err=True)
    for n in res.notes:
        click.echo(f"note: {escape_control(n)}", err=True)
    if res.drift:
        word = "error" if res.errors and not res.drift_allowed else "warning" if res.errors else "note"
        click.echo(f"{word}: this host differs from what {name} recorded:", err=True)
        sys.stdout.flush()
        table(["package", "expected", "found", "what to do"],
              [(d.name, d.expected, d.found, d.action) for d in res.drift])
    if res.exit_code == 0:
        click.echo(f"{name} is up to date" + (" (host drift allowed)" if res.errors else ""))


@cli.command()
@click.argument("key", required=False)
@click.option("--refresh", is_flag=True, help="Ignore the host-profile cache: probe everything again.")
@json_option
@pass_ctx
@handle_errors
def detect(c: CliContext, key: str | None, refresh: bool, as_json: bool) -> None:
    """Show host facts and detected software (all, or what satisfies KEY)."""
    from ckpm import api
    from ckpm.ops.session import manifest_or_none

    settings = c.settings(as_json=as_json)
    res = api.detect_host(c.indexes(as_json=as_json), key=key, manifest=manifest_or_none(c.project, settings),
                          refresh=refresh, cache_dir=settings.cache_dir, settings=settings)
    c.reporter.warn_all(res.warnings)
    if as_json:
        emit(c, {k: v for k, v in res.to_json().items() if k != "warnings"})
        return
    from ckpm.cli.output import table

    if key is None:
        # a fact's value is its name where it has one (`__arch` is x86_64; its version 1 says nothing)
        table(["fact", "value", "version", "details"],
              [(n, d.extra.get("name", ""), d.version, _extra({k: x for k, x in d.extra.items() if k != "name"}))
               for n, d in sorted(res.facts.items())], title="host facts")
    rows = [(n, d.version, d.path or "", d.detector, _extra(d.extra))
            for n in sorted(res.found) for d in res.found[n]]
    table(["component", "version", "path", "detector", "details"], rows, title="detected software")
    if key is not None and not rows:
        click.echo(f"nothing on this host satisfies {key}", err=True)
        sys.exit(1)


def _extra(extra: Any) -> str:
    keep = ("language", "languages", "triple", "cross", "compiler", "name", "driver", "libdir")
    return ", ".join(f"{k}={v if not isinstance(v, (list, tuple)) else ','.join(map(str, v))}"
                     for k, v in extra.items() if k in keep and v not in (None, "", False))


@cli.command()
@click.option("--target", "-t", help="Show one target (default: every locked target).")
@json_option
@pass_ctx
@handle_errors
def tree(c: CliContext, target: str | None, as_json: bool) -> None:
    """Show the locked dependency graph."""
    from ckpm import api

    ws = c.workspace(as_json=as_json)
    trees = api.tree(ws, target)
    if as_json:
        emit(c, {t: [n.to_dict() for n in nodes] for t, nodes in trees.items()})
        return
    ws_name = ws.manifest.name
    for t, nodes in trees.items():
        click.echo(f"{ws_name} ({t})")
        _print_nodes(nodes, "")


def _print_nodes(nodes: list[Any], prefix: str) -> None:
    from ckpm.report import escape_control

    for i, n in enumerate(nodes):
        last = i == len(nodes) - 1
        label = n.name if n.key == n.name else f"{n.key} = {n.name}"
        extra = " (*)" if n.repeated else ""
        src = "" if n.source == "index" else f" [{n.source}]"
        click.echo(escape_control(f"{prefix}{'└── ' if last else '├── '}{label} {n.version}{src}{extra}"))
        _print_nodes(n.children, prefix + ("    " if last else "│   "))


@cli.command()
@click.argument("name")
@click.option("--target", "-t", help="Only what the lock resolved for TARGET.")
@json_option
@pass_ctx
@handle_errors
def why(c: CliContext, name: str, target: str | None, as_json: bool) -> None:
    """Show who pulled NAME into the lock, through which requirements."""
    from ckpm import api
    from ckpm.report import escape_control

    chains = api.why(c.workspace(as_json=as_json), name, target=target)
    if as_json:
        emit(c, {"name": name, "chains": chains})
        return
    for ch in chains:
        click.echo(escape_control(" → ".join(ch)))


@cli.command("why-not")
@click.argument("spec")
@click.option("--target", "-t", help="Target to explain for (default: the host's, else the first locked target).")
@json_option
@pass_ctx
@handle_errors
def why_not(c: CliContext, spec: str, target: str | None, as_json: bool) -> None:
    """Explain why NAME@VERSION is not in the lock."""
    from ckpm import api
    from ckpm.errors import ProjectError

    name, _, version = spec.partition("@")
    if not version or not name:
        raise ProjectError(f"{spec!r}: give NAME@VERSION, e.g. lib-numpy@1.26.4")
    res = api.why_not(c.workspace(as_json=as_json), name, version.lstrip("="), target=target)
    if as_json:
        emit(c, res.to_dict())
    else:
        from ckpm.report import escape_control

        for line in res.lines:
            click.echo(escape_control(line))
    if not res.exists:  # a version nobody has is the user's mistake, not an answer
        sys.exit(1)


@cli.command()
@click.argument("text", required=False)
@click.option("--tags", help="Comma-separated tags every hit must carry.")
@click.option("--kind", help="Only this kind (program, lib, compiler, tool, model, dataset, script).")
@click.option("--limit", type=int, help="At most N hits.")
@click.option("--timeout", type=float, help="Bound the whole command's index reads (s).")
@json_option
@pass_ctx
@handle_errors
def search(c: CliContext, text: str | None, tags: str | None, kind: str | None, limit: int | None, timeout: float | None,
           as_json: bool) -> None:
    """Search the index by free TEXT and/or --tags."""
    from ckpm import queries  # what ckpm.api re-exports, without the modules that change a project

    hits = queries.search(c.indexes(as_json=as_json, timeout=timeout), text=text, tags=tags, kind=kind, limit=limit)
    if as_json:
        emit(c, [h.to_dict() for h in hits])
        return
    if not hits:
        click.echo("no components match", err=True)
        return
    from ckpm.cli.output import table

    table(["name", "latest", "kind", "tags", "description"],
          [(h.name, h.latest, h.kind, ",".join(h.tags), h.description) for h in hits])


@cli.command()
@click.argument("name")
@json_option
@pass_ctx
@handle_errors
def show(c: CliContext, name: str, as_json: bool) -> None:
    """Show a component's versions, tags, deps, targets and source."""
    from ckpm import api

    info = api.show(c.indexes(as_json=as_json), name)
    if as_json:
        emit(c, info)
        return
    from ckpm.report import escape_control

    def echo(text: str) -> None:
        click.echo(escape_control(text))

    last = info["versions"][-1]
    echo(f"{info['name']} ({info['kind']}) from index {info['index']}")
    if info["description"]:
        echo(f"  {info['description']}")
    echo(f"  tags:    {', '.join(last['tags'])}")
    echo(f"  targets: {', '.join(last['targets'])}")
    src = last["source"]
    if src:
        echo(f"  source:  {src.get('git') or ', '.join(src.get('urls', []))}")
    if last["deps"]:
        echo("  deps (latest):")
        for d in last["deps"]:
            extra = f" tags={','.join(d['tags'])}" if d.get("tags") else ""
            echo(f"    {d['name']} {d.get('req', '*')}{extra}"
                       + (f" [{d['kind']}]" if d.get("kind", "run") != "run" else ""))
    vs = [v["version"] + (" (yanked)" if v["yanked"] else "") for v in info["versions"]]
    echo(f"  versions ({len(vs)}): {', '.join(vs)}")


# -- running programs ---------------------------------------------------------------------------

def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    from ckpm.errors import UsageError

    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise UsageError(f"{what} {it!r}: write NAME=VALUE")
        out[k] = v
    return out


@cli.command("run")
@click.argument("component", required=False)
@click.option("--cmd", "command", help="The program's named command (default: its first).")
@click.option("--flags", help="A flag profile of the program (speed, size, debug…).")
@click.option("--cflags", help="Extra compiler flags, e.g. '-O3 -funroll-loops'.")
@click.option("--env", "env", multiple=True, help="NAME=VALUE for the program's environment (repeatable).")
@click.option("--param", "params", multiple=True, help="NAME=VALUE for a program parameter (repeatable).")
@click.option("--input", "input_key", help="The dependency key of the input data set.")
@click.option("--target", "-t", help="Build for TARGET (cross-compiled; run under its emulator).")
@click.option("--repeat", "-n", type=click.IntRange(1, 10_000), default=1, show_default=True,
              help="Repetitions (statistics over them).")
@click.option("--record", help="Save the run as experiment NAME (.ckpm/experiments/NAME/).")
@click.option("--locked", is_flag=True, help="Never resolve: fail if ckpm.lock does not hold.")
@click.option("--scheduler", help="Run on a worker of this Dask cluster (tcp://HOST:PORT), from the shipped lock.")
@json_option
@pass_ctx
@handle_errors
def run_cmd(c: CliContext, component: str | None, command: str | None, flags: str | None, cflags: str | None,
            env: tuple[str, ...], params: tuple[str, ...], input_key: str | None, target: str | None, repeat: int,
            record: str | None, locked: bool, scheduler: str | None, as_json: bool) -> None:
    """Provision, compile, run, validate and record a program (default: the project's own)."""
    from ckpm.ops import run as ops_run

    req = ops_run.run_request({"component": component, "command": command, "flags": flags, "cflags": cflags or "",
                               "env": _pairs(env, "--env"), "params": _pairs(params, "--param"), "input": input_key,
                               "target": target, "repeat": repeat, "record": record, "locked": locked})
    rec = ops_run.run(c.workspace(as_json=as_json), req, scheduler=scheduler)
    if as_json:
        emit(c, rec)
        return
    _print_record(rec)


def _print_record(rec: dict[str, Any]) -> None:
    from ckpm.cli.output import info, plural, table

    prog = rec["program"]
    comp = rec["stages"]["compile"]
    info(f"{prog['name']} ({prog['command']}) on {rec['target']}: compiled with {comp['compiler']['name']} "
         f"{comp['compiler']['version']}" + (" (reused)" if comp["reused"] else "")
         + f"; {plural(len(rec['repetitions']), 'run')}; validation "
         + ("passed" if rec["ok"] else "FAILED"))
    rows = []
    for name, m in rec["metrics"].items():
        if not m.get("n"):
            continue
        unit = {"time": " s", "size": " B", "max_rss": " MiB"}.get(name, "")
        fmt = "{:.4g}"
        rows.append((name, fmt.format(m["min"]) + unit, fmt.format(m["median"]) + unit, fmt.format(m["max"]) + unit,
                     str(m["n"])))
    table(["metric", "min", "median", "max", "n"], rows)
    if rec.get("path"):
        info(f"recorded as {rec['experiment']}: {rec['path']}")


@cli.command()
@click.argument("name")
@click.option("--id", "record_id", help="Replay this record of the experiment (default: its latest).")
@click.option("--tolerance", type=float, default=0.10, show_default=True,
              help="A metric regresses when worse than the recorded worst run by more than this fraction.")
@click.option("--record", help="Also save the replay as experiment NAME.")
@json_option
@pass_ctx
@handle_errors
def replay(c: CliContext, name: str, record_id: str | None, tolerance: float, record: str | None, as_json: bool) -> None:
    """Run a recorded experiment again with its recorded configuration and lock; report what differs."""
    from ckpm.ops.run import REPLAY_DIFFERS, replay as do_replay

    res = do_replay(c.workspace(as_json=as_json), name, record_id=record_id, tolerance=tolerance, save_as=record)
    if as_json:
        emit(c, res.to_dict())
        if not res.ok:
            sys.exit(REPLAY_DIFFERS)
        return
    from ckpm.cli.output import info, table

    if res.differences:
        info("configuration differences:", style="yellow")
        table(["what", "recorded", "now"], [(d["what"], str(d["recorded"]), str(d["now"])) for d in res.differences])
    table(["metric", "recorded (median)", "now (median)", "ratio", "verdict"],
          [(m["metric"], f"{m['recorded']:.4g}", f"{m['now']:.4g}", f"{m['ratio']:.3f}" if m["ratio"] else "-",
            m["verdict"]) for m in res.metrics])
    if res.ok:
        info(f"replay of {name}: same configuration, no regression (tolerance {tolerance:.0%})")
    else:
        what = []
        if res.differences:
            what.append(f"{len(res.differences)} configuration difference(s)")
        if res.regressions:
            what.append(f"{len(res.regressions)} regression(s): " + ", ".join(m["metric"] for m in res.regressions))
        if not res.record.get("ok"):
            what.append("validation failed")
        click.echo(f"replay of {name}: " + "; ".join(what), err=True)
        sys.exit(REPLAY_DIFFERS)


# -- provisioning ---------------------------------------------------------------------------

timeout_option = click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                              help="Time limit of the whole command (s): resolution, downloads and builds "
                                   f"(default: none; resolution alone stops after {RESOLVE_SECONDS:g} s).")
mirror_option = click.option("--mirror", "mirrors", multiple=True, type=click.Path(file_okay=False, path_type=Path),
                             help="A folder made by `ckpm vendor`, tried first for every source: archives, git "
                                  "repositories, python distributions (repeatable).")


@cli.command()
@click.option("--target", "-t", help="Provision for TARGET (default: the host); cross-compiles what must be built.")
@click.option("--locked", is_flag=True, help="Never resolve: fail if ckpm.lock does not hold.")
@click.option("--allow-host-drift", is_flag=True, help="With --locked: host differences are warnings.")
@click.option("--no-host", is_flag=True, help="Resolve as if nothing were installed (build or fetch everything).")
@click.option("--jobs", "-j", type=int, default=0, help="Parallel jobs of a build (default: the CPU count).")
@timeout_option
@mirror_option
@json_option
@pass_ctx
@handle_errors
def sync(c: CliContext, target: str | None, locked: bool, allow_host_drift: bool, no_host: bool, jobs: int,
         timeout: float | None,
         mirrors: tuple[Path, ...], as_json: bool) -> None:
    """Provision every locked package: from the host, the store, or fetched and built."""
    from ckpm.ops import sync as ops_sync

    outcome, res = ops_sync.sync(c.workspace(as_json=as_json, no_host=no_host), target=target, jobs=jobs,
                                 mirrors=mirrors, timeout=timeout, locked=locked, allow_host_drift=allow_host_drift)
    if as_json:
        emit(c, {"lock": outcome.to_dict(), **res.to_dict()})
        return
    _report_sync(res)


def _report_sync(res: Any, verb: str = "synced") -> None:
    from ckpm.cli.output import info, plural, table

    table(["package", "version", "target", "action", "where"],
          [(p.name, p.version, p.target, p.action, p.path or p.detail) for p in res.packages])
    counts: dict[str, int] = {}
    for p in res.packages:
        counts[p.action] = counts.get(p.action, 0) + 1
    info(f"{verb} {plural(len(res.packages), 'package')} for {res.target}: "
         + ", ".join(f"{n} {a}" for a, n in sorted(counts.items())))
    for line in res.pinned:
        info(f"pinned on first use: {line}")


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--target", "-t", help="The target whose sources to fetch (default: the host).")
@click.option("--locked", is_flag=True, help="Never resolve: fail if ckpm.lock does not hold.")
@timeout_option
@mirror_option
@json_option
@pass_ctx
@handle_errors
def fetch(c: CliContext, names: tuple[str, ...], target: str | None, locked: bool, timeout: float | None,
          mirrors: tuple[Path, ...], as_json: bool) -> None:
    """Download and verify the sources of NAMES (default: every locked package); build nothing."""
    from ckpm.ops import sync as ops_sync

    ws = c.workspace(as_json=as_json)
    res = ops_sync.fetch(ws, names, target=target, mirrors=mirrors, timeout=timeout, locked=locked)
    if as_json:
        emit(c, res.to_dict())
        return
    _report_sync(res, verb="fetched")
    fetched = [p.path for p in res.packages if p.action == "fetched" and p.path]
    if fetched:
        from ckpm.cli.output import info

        info(f"the sources are in the download cache, {ws.settings.cache_root}; `ckpm vendor DIR` copies them "
             "into a folder of your choice")


@cli.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", "-t", "targets", multiple=True,
              help="Vendor what a sync of TARGET needs (repeatable; default: every target of the lock).")
@click.option("--locked", is_flag=True, help="Never resolve: use ckpm.lock as it is.")
@mirror_option
@json_option
@pass_ctx
@handle_errors
def vendor(c: CliContext, dest: Path, targets: tuple[str, ...], locked: bool, mirrors: tuple[Path, ...],
           as_json: bool) -> None:
    """Write every source a sync needs (archives, git repositories, python distributions) into DEST."""
    from ckpm.cli.output import info
    from ckpm.ops import sync as ops_sync

    res = ops_sync.vendor(c.workspace(as_json=as_json), dest, targets=targets, mirrors=mirrors, locked=locked)
    if as_json:
        emit(c, res.to_dict())
        return
    info(f"vendored {res.summary()} into {dest}")
    click.echo(f"to use it offline: ckpm sync --locked --offline --mirror {dest}   (or in ckpm.toml: "
               f"[mirrors] {ops_sync.offline_rules(res, dest)})", err=True)


@cli.command("env")
@click.option("--target", "-t", help="The target (default: the host).")
@json_option
@pass_ctx
@handle_errors
def env_cmd(c: CliContext, target: str | None, as_json: bool) -> None:
    """Print the environment (PATH, CC, CXX, CPPFLAGS, LDFLAGS, PKG_CONFIG_PATH, *_ROOT…) to use the deps."""
    import shlex

    from ckpm.ops.sync import environment

    variables = environment(c.workspace(as_json=as_json), target)
    if as_json:
        emit(c, variables)
        return
    for k, v in sorted(variables.items()):
        click.echo(f"export {k}={shlex.quote(v)}")


@cli.group()
def store() -> None:
    """The store of fetched and built prefixes: ls, path NAME, gc."""


@store.command("ls")
@json_option
@pass_ctx
@handle_errors
def store_ls(c: CliContext, as_json: bool) -> None:
    """List the complete prefixes of the store."""
    from ckpm.ops import store as ops_store

    entries = ops_store.store_ls(c.settings(as_json=as_json))
    if as_json:
        emit(c, [ops_store.entry_dict(e) for e in entries])
        return
    from ckpm.cli.output import table

    table(["name", "version", "target", "path"], [(e.name, e.version, e.target, str(e.path)) for e in entries])


@store.command("path")
@click.argument("name")
@click.option("--target", "-t", help="Only prefixes built for TARGET.")
@pass_ctx
@handle_errors
def store_path(c: CliContext, name: str, target: str | None) -> None:
    """Print the store prefix(es) of NAME."""
    from ckpm.errors import CkpmError
    from ckpm.ops.store import store_paths

    paths = store_paths(c.settings(), name, target)
    if not paths:
        raise CkpmError(f"no prefix of {name} in the store", hint="run `ckpm sync` first")
    for p in paths:
        click.echo(str(p))


@store.command("gc")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
@pass_ctx
@handle_errors
def store_gc(c: CliContext, dry_run: bool, as_json: bool) -> None:
    """Remove the prefixes that no known project's lock uses."""
    from ckpm.cli.output import info, plural
    from ckpm.ops.store import store_gc

    removed = store_gc(c.settings(as_json=as_json), dry_run=dry_run)
    if as_json:
        emit(c, {"removed": removed, "dry_run": dry_run})
        return
    for k in removed:
        info(f"{'would remove' if dry_run else 'removed'} {k}")
    info(f"{plural(len(removed), 'prefix', 'prefixes')} {'to remove' if dry_run else 'removed'}")


@cli.group()
def index() -> None:
    """Manage indexes: update git/HTTP copies, rebuild a folder's summary."""


@index.command("update")
@click.option("--timeout", type=float, help="Bound the whole command's index reads (s).")
@json_option
@pass_ctx
@handle_errors
def index_update(c: CliContext, timeout: float | None, as_json: bool) -> None:
    """Fetch the project's git indexes (incrementally) and revalidate HTTP ones."""
    from ckpm import api

    res = api.index_update(c.indexes(as_json=as_json, timeout=timeout))
    if as_json:
        emit(c, res)
        return
    for r in res:
        click.echo(f"{r['name']}: {r['url']}" + (f" at {r['revision'][:12]}" if r.get("revision") else ""))


@index.command("reindex")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_ctx
@handle_errors
def index_reindex(c: CliContext, path: Path) -> None:
    """Rebuild PATH/summary.jsonl from the component files of an index folder."""
    from ckpm.ops.index import reindex

    n = reindex(path)
    click.echo(f"{path}/summary.jsonl: {n} components")


#: global options and whether each takes a value; they may stand before or after the command
GLOBAL_OPTIONS = {"-C": True, "--project": True, "--index": True, "--cache-dir": True, "--offline": False,
                  "-v": False, "--verbose": False}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options written after the command to before it (``ckpm lock -v`` = ``ckpm -v lock``).

    Only the options above are moved, with their values; everything after ``--`` stays.
    """
    commands = {*cli.commands, *LAZY_COMMANDS}  # type: ignore[attr-defined]
    i, n = 0, len(argv)
    while i < n and argv[i] not in commands:  # find the command, skipping global options and values
        a = argv[i]
        if a == "--":
            return argv
        i += 2 if GLOBAL_OPTIONS.get(a) else 1
    if i >= n:
        return argv
    head, rest, moved = argv[:i + 1], [], []
    j = i + 1
    while j < n:
        a = argv[j]
        if a == "--":
            rest.extend(argv[j:])
            break
        name = a.split("=", 1)[0] if a.startswith("--") else a
        if name in GLOBAL_OPTIONS or (a.startswith("-v") and set(a[1:]) == {"v"}):
            if GLOBAL_OPTIONS.get(name) and "=" not in a and j + 1 < n:
                moved.extend(argv[j:j + 2])
                j += 2
                continue
            moved.append(a)
        else:
            rest.append(a)
        j += 1
    return argv[:i] + moved + head[i:] + rest


def _usage_error(e: click.exceptions.UsageError, args: list[str]) -> None:
    """A usage error in ckpm's own shape: ``error:`` and a hint on stderr, or the ``--json``
    envelope (code ``usage``) when the command line asked for JSON."""
    from ckpm.cli.output import emit_json, error_envelope
    from ckpm.report import escape_control

    path = e.ctx.command_path if e.ctx is not None else "ckpm"
    hint = f"`{path} --help` lists its options and arguments"
    if "--json" in args:
        command = path.split(" ", 1)[1] if " " in path else ""
        emit_json(error_envelope(command, {"code": "usage", "error": e.format_message(), "hint": hint,
                                           "details": []}, []))
    else:
        click.echo(f"error: {escape_control(e.format_message())}\nhint: {hint}", err=True)


def _refuse_an_option_as_a_value(args: list[str]) -> None:
    """``sync --target --json``: click would take ``--json`` as the target. An option that takes
    a value and is followed by another option of the same command is a usage error."""
    group: Any = cli
    ctx = click.Context(cli, info_name="ckpm")
    i = 0
    while i < len(args) and isinstance(group, click.Group):  # find the command (global options first)
        sub = group.get_command(ctx, args[i])
        if sub is not None:
            ctx = click.Context(sub, parent=ctx, info_name=args[i])
            group = sub
        elif not args[i].startswith("-") and i > 0 and args[i - 1] not in GLOBAL_OPTIONS:
            return
        i += 1
    names = {n: p for p in group.params if isinstance(p, click.Option) for n in (*p.opts, *p.secondary_opts)}
    for a, nxt in zip(args[i:], args[i + 1:]):
        opt = names.get(a)
        if opt is not None and not opt.is_flag and not opt.count and nxt in names:
            raise click.exceptions.UsageError(f"{a} needs a value, and {nxt} is an option", ctx=ctx)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; usage errors exit 64 (2 means that no resolution exists)."""
    from ckpm.errors import UsageError

    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        _refuse_an_option_as_a_value(args)
        rv = cli.main(args=args, prog_name="ckpm", standalone_mode=False)
    except click.exceptions.UsageError as e:
        _usage_error(e, args)
        sys.exit(UsageError.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
