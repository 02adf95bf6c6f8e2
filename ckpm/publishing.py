"""``ckpm publish``, ``ckpm yank``, ``ckpm login`` / ``logout``: a maintainer's side of an index.

A component lives in its own git repository with a ``[component]`` ``ckpm.toml``; each
version is a tag. :func:`publish` turns the tag at ``HEAD`` (or ``tag``) into one index
line and appends it to an index:

- a **git index** (``--index PATH|file://…|git+…``): through :func:`ckpm.index.publish.publish_line`
  (the only code that writes a git index: one commit, pushed and retried when rejected);
- a **registry** (``--registry URL``, or an ``http(s)://`` index whose ``config.json``
  names its ``api``): ``PUT /api/v1/publish`` with a bearer token.

Everything is checked before anything is written (:func:`prepare_release` and
:func:`check_target`): the manifest at the tagged commit is valid; the tag names the
manifest's version; the working tree is clean; the tag is at the source URL, on the same
commit; every dependency is in the target index (or is a git dependency, or a host fact,
or a capability some component there provides); the version is not published yet. A version
that is published from another commit is a :class:`~ckpm.errors.TagMoved` naming both.

The line records ``source`` (``git`` URL, ``tag``, ``rev``: the full commit, ``subdir``),
``cksum`` (:mod:`ckpm.index.archive`: sha256 of a reproducible tar of the tree) and
``pubtime`` (UTC, ISO 8601).

Tokens: ``token`` argument, else ``$CKPM_TOKEN``, else the user config's
``[registries."<api base URL>"] token``, which :func:`login` writes after checking it
with ``GET /api/v1/me``. The config file is then written with mode 0600 from its first byte
(a temporary file made private, renamed over the old one), under a file lock.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ckpm.errors import CkpmError, ManifestError, TagMoved, UsageError
from ckpm.fsutil import file_lock
from ckpm.settings import SettingsError, Settings

TOKEN_ENV = "CKPM_TOKEN"
CONFIG_TABLE = "registries"
MAX_TOKEN_LEN = 4096
MAX_RESPONSE_BYTES = 1 << 20
HTTP_TIMEOUT = 30.0
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: safe in a header
_LEADING_V = re.compile(r"^[vV](?=\d)")


class PublishError(CkpmError):
    """A release that cannot be published as it is (the checks before writing)."""

    code = "publish"


class RegistryError(CkpmError):
    """A registry answered with an error (its stable code is kept as ``code``) or could not be reached."""

    code = "registry"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if code:
            self.code = code
        self.status = status


class AuthError(RegistryError):
    """No token, or one the registry does not accept."""

    code = "unauthorized"


# -- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    """Where a release goes: a git index (``url``) or a registry (``url`` as given, ``api`` its base)."""

    kind: str  # "git" or "registry"
    url: str
    api: str | None = None

    def describe(self) -> str:
        return f"registry {self.api}" if self.kind == "registry" else f"git index {self.url}"


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def resolve_target(index: str | None, registry: str | None, settings: Settings) -> Target:
    """The target of a publish or yank: ``--registry`` (a base URL or the index URL it serves),
    else ``--index``: an ``http(s)://`` index is its registry, anything else a git index."""
    if registry and index:
        raise UsageError("give --index or --registry, not both")
    if registry:
        if not _is_http(registry):
            raise UsageError(f"--registry takes an http:// or https:// URL, not {registry!r}")
        return Target("registry", registry, api_base(registry, settings))
    if index:
        if _is_http(index):
            return Target("registry", index, api_base(index, settings))
        return Target("git", index)
    raise UsageError("say where to publish: --index GIT_URL (a git index) or --registry URL",
                     hint="`ckpm publish --index git+file:///srv/ckpm-index.git` or "
                          "`ckpm publish --registry https://registry.example.org`")


def _origin(url: str) -> tuple[str, str, int | None]:
    u = urllib.parse.urlsplit(url)
    return u.scheme.lower(), (u.hostname or "").lower(), u.port


def api_base(url: str, settings: Settings) -> str:
    """The registry's API base for ``url``: the ``api`` its ``config.json`` names (same origin
    only: a token is never sent to a host other than the one the user named), else ``url``."""
    url = url.rstrip("/")
    try:
        data = _http(settings, "GET", f"{url}/config.json", auth=None, what=f"{url}/config.json")
    except RegistryError:
        return url
    api = data.get("api") if isinstance(data, dict) else None
    if not isinstance(api, str) or not api:
        return url
    if not _is_http(api):
        raise RegistryError(f"{url}/config.json names an api that is not an http(s) URL: {api[:200]!r}")
    if _origin(api) != _origin(url):
        raise RegistryError(f"{url}/config.json names its api on another host ({api[:200]}); "
                            "ckpm sends a token only to the host you named",
                            hint=f"pass --registry {api[:200]} if you trust it")
    return api.rstrip("/")


# -- HTTP ----------------------------------------------------------------------------------


def exposed_in_transit(url: str) -> bool:
    """Whether a token sent to ``url`` crosses a network unencrypted (http to a host that is not
    this machine)."""
    import ipaddress

    u = urllib.parse.urlsplit(url)
    if u.scheme.lower() != "http":
        return False
    host = (u.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _origin_text(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def _check_token(token: str) -> str:
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LEN or not _TOKEN_RE.fullmatch(token):
        raise AuthError("the token is not valid: printable ASCII without spaces, at most 4,096 characters")
    return token


def request_json(settings: Settings, method: str, url: str, *, auth: str | None, body: Any = None, what: str = "",
                 max_bytes: int = MAX_RESPONSE_BYTES) -> Any:
    """One JSON request to a registry (also for ``ckpm.sharing``); see :func:`_http`."""
    return _http(settings, method, url, auth=auth, body=body, what=what, max_bytes=max_bytes)


def _http(settings: Settings, method: str, url: str, *, auth: str | None, body: Any = None,
          what: str = "", auth_hint: str | None = None, max_bytes: int = MAX_RESPONSE_BYTES) -> Any:
    """One JSON request; the answer's JSON (bounded), or a RegistryError with the server's code."""
    import requests

    headers = {"Accept": "application/json", "User-Agent": "ckpm"}
    if auth is not None:
        headers["Authorization"] = f"Bearer {_check_token(auth)}"
        if exposed_in_transit(url):
            settings.reporter.warning(f"sending the registry token to {_origin_text(url)} over plain http: "
                                      "anyone on the way can read it; use https")
    data = None
    if body is not None:
        data = json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if settings.offline:
        raise RegistryError(f"cannot reach {url} while offline", hint="run again without --offline")
    deadline = time.monotonic() + 2 * HTTP_TIMEOUT
    try:
        with requests.request(method, url, data=data, headers=headers, timeout=HTTP_TIMEOUT, stream=True,
                              allow_redirects=False) as r:
            raw = b""
            for chunk in r.iter_content(65536):
                raw += chunk
                if len(raw) > max_bytes:
                    raise RegistryError(f"{url}: the answer is larger than {max_bytes:,} bytes")
                if time.monotonic() > deadline:
                    raise RegistryError(f"{url}: the answer took longer than {2 * HTTP_TIMEOUT:g} s")
            status = r.status_code
    except requests.Timeout:
        raise RegistryError(f"cannot reach {what or url}: no answer within {HTTP_TIMEOUT:g} s",
                            hint="check the URL and your network") from None
    except requests.ConnectionError as e:
        from ckpm.netutil import connection_reason

        reason, _ = connection_reason(e)
        raise RegistryError(f"cannot reach {what or url}: {reason}",
                            hint="check the URL, that the registry is running, and your network") from None
    except requests.RequestException as e:
        from ckpm.netutil import short_error

        raise RegistryError(f"cannot reach {what or url}: {short_error(e)}",
                            hint="check the URL and your network") from None
    try:
        parsed = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        parsed = None
    if 200 <= status < 300:
        if parsed is None and raw:
            raise RegistryError(f"{url}: the answer is not JSON (status {status})")
        return parsed
    err = parsed.get("error") if isinstance(parsed, dict) else None
    code = err.get("code") if isinstance(err, dict) and isinstance(err.get("code"), str) else None
    message = err.get("message") if isinstance(err, dict) and isinstance(err.get("message"), str) else None
    from ckpm.report import escape_control

    text = escape_control((message or f"HTTP {status}")[:1000])
    code = (code or "")[:64] or None
    if status == 401:
        raise AuthError(f"{what or url}: {text}", code=code or "unauthorized", status=status,
                        hint=auth_hint or "pass --token, set $CKPM_TOKEN, or run `ckpm login --registry URL`")
    if status == 429:
        raise RegistryError(f"{what or url}: {text}", code=code, status=status,
                            hint=f"wait {r.headers.get('Retry-After', 'a minute')[:10]} s and run it again")
    raise RegistryError(f"{what or url}: {text}", code=code, status=status)


# -- tokens and the user config --------------------------------------------------------------


def _config_path(settings: Settings) -> Path:
    assert settings.config_path is not None
    return Path(settings.config_path)


def token_for(api: str, settings: Settings, explicit: str | None = None) -> str | None:
    """The token for the registry ``api``: ``explicit``, else ``$CKPM_TOKEN``, else the user config."""
    if explicit:
        return _check_token(explicit)
    env = settings.environ.get(TOKEN_ENV)
    if env:
        return _check_token(env)
    table = settings.config_table(CONFIG_TABLE)
    entry = table.get(api.rstrip("/"))
    if isinstance(entry, dict) and isinstance(entry.get("token"), str):
        path = _config_path(settings)
        with contextlib.suppress(OSError):
            if os.stat(path).st_mode & 0o077:
                settings.reporter.warning(f"{path} holds a registry token and others may read it; "
                                          f"run `chmod 600 {path}`")
        return _check_token(entry["token"])
    return None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 from the first byte (a private
    temporary file renamed over the old one); a new folder is made 0700."""
    import tempfile

    path = Path(os.path.realpath(path))  # a config kept elsewhere through a link stays a link
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _editing_config(settings: Settings) -> Iterator[Any]:
    """The user config as a tomlkit document, written back (0600) when the block ends."""
    import tomlkit

    from ckpm.fsutil import read_bounded
    from ckpm.settings import MAX_CONFIG_BYTES

    path = _config_path(settings)
    with file_lock(path.with_name(path.name + ".lock"), on_wait=settings.reporter.note, what=f"the config {path}"):
        try:
            raw = read_bounded(path, MAX_CONFIG_BYTES)
        except FileNotFoundError:
            raw = b""
        if raw is None:
            raise SettingsError(f"{path}: the ckpm config is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            doc = tomlkit.parse(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomlkit.exceptions.ParseError) as e:
            raise SettingsError(f"{path}: not a valid ckpm config ({e}); nothing written") from None
        yield doc
        write_private(path, tomlkit.dumps(doc))
    settings._config = None  # read again on next use


@dataclass
class LoginResult:
    registry: str
    user: str
    config: str

    def to_dict(self) -> dict[str, Any]:
        return {"registry": self.registry, "user": self.user, "config": self.config}


def login(registry: str, token: str, *, settings: Settings | None = None) -> LoginResult:
    """Check ``token`` with ``GET /api/v1/me`` and keep it in the user config (mode 0600)."""
    import tomlkit

    s = settings if settings is not None else Settings()
    if not _is_http(registry):
        raise UsageError(f"--registry takes an http:// or https:// URL, not {registry!r}")
    token = _check_token(token)
    api = api_base(registry, s)
    me = _http(s, "GET", f"{api}/api/v1/me", auth=token, what=f"{api}/api/v1/me",
               auth_hint="the registry does not know this token: check that you copied it whole, or ask "
                         "the registry's operator for a new one (`ckpm-registry token add LOGIN`)")
    user = me.get("user") if isinstance(me, dict) else None
    if not isinstance(user, str) or not user:
        raise RegistryError(f"{api}/api/v1/me did not name a user")
    with _editing_config(s) as doc:
        regs = doc.get(CONFIG_TABLE)
        if regs is None:
            regs = tomlkit.table()
            doc[CONFIG_TABLE] = regs
        elif not isinstance(regs, dict):
            raise SettingsError(f"{_config_path(s)}: [{CONFIG_TABLE}] must be a table; nothing written")
        entry = tomlkit.table()
        entry["token"] = token
        entry["user"] = user[:200]
        regs[api] = entry
    return LoginResult(api, user, str(_config_path(s)))


def logout(registry: str | None = None, *, settings: Settings | None = None) -> list[str]:
    """Forget the token of ``registry`` (its API base or the URL given at login), or of every
    registry; returns the registries forgotten."""
    s = settings if settings is not None else Settings()
    if not _config_path(s).exists() or not s.config_table(CONFIG_TABLE):
        return []  # nothing to forget: the file is left as it is
    with _editing_config(s) as doc:
        regs = doc.get(CONFIG_TABLE)
        if not isinstance(regs, dict):
            return []
        if registry is None:
            gone = list(regs)
        else:
            want = {registry.rstrip("/")}
            gone = [k for k in regs if k in want]
            if not gone and _is_http(registry):
                with contextlib.suppress(CkpmError):
                    want.add(api_base(registry, s))
                gone = [k for k in regs if k in want]
        for k in gone:
            del regs[k]
        if not regs:
            del doc[CONFIG_TABLE]
    return gone


# -- the release -----------------------------------------------------------------------------


@dataclass
class Release:
    """A tagged version of a component, as it would be published: its index line and where it is from."""

    line: dict[str, Any]
    repo: Path  # the repository's working tree
    subdir: str | None
    tag: str
    commit: str

    @property
    def name(self) -> str:
        return str(self.line["name"])

    @property
    def version(self) -> str:
        return str(self.line["version"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "tag": self.tag, "commit": self.commit,
                "subdir": self.subdir, "line": self.line}


def _peel_commit(repo: Any, ref: str) -> str | None:
    import pygit2

    try:
        obj = repo.lookup_reference(ref).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return str(obj.id) if isinstance(obj, pygit2.Commit) else None


def _dirty(repo: Any, limit: int = 10) -> list[str]:
    import pygit2

    out = []
    for path, flags in sorted(repo.status().items()):
        if flags == pygit2.GIT_STATUS_CURRENT or flags & pygit2.GIT_STATUS_IGNORED:
            continue
        out.append(path)
        if len(out) >= limit:
            break
    return out


def _source_url(repo: Any, workdir: Path, explicit: str | None) -> str:
    url = explicit
    if url is None:
        try:
            url = repo.remotes["origin"].url
        except (KeyError, ValueError):
            url = None
        if not url:
            raise PublishError(f"{workdir} has no remote `origin`, so where others fetch the source is unknown",
                               hint="add it (`git remote add origin URL` and push the tag), or pass --source-url URL")
    if "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url):  # a local path: a file:// URL
        p = Path(url).expanduser()
        if not p.is_absolute():
            p = (workdir / p)
        url = p.resolve().as_uri()
    return url


def pubtime_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare_release(path: Path | str | None = None, *, tag: str | None = None, source_url: str | None = None,
                    settings: Settings | None = None, check_remote: bool = True,
                    allow_dirty: bool = False) -> Release:
    """The index line of the version tagged at ``HEAD`` (or ``tag``) of the component in ``path``.

    Checks: ``path`` is (in) a git working tree with ``ckpm.toml``; the tree is clean; the tag
    names a version, and the manifest at the tagged commit is valid and says that version (or
    none); the tag is at the source URL on the same commit (``check_remote``; not offline).
    """
    import pygit2

    from ckpm.index.archive import tree_cksum_of
    from ckpm.index.gitsource import tag_version
    from ckpm.model.entry import IndexDataError, check_entry
    from ckpm.model.manifest import parse_component_manifest
    from ckpm.model.version import try_version

    s = settings if settings is not None else Settings()
    comp_dir = Path(path or ".").resolve()
    if not (comp_dir / "ckpm.toml").is_file():
        raise PublishError(f"{comp_dir} has no ckpm.toml", hint="run `ckpm publish` in a component's folder "
                                                                 "(a ckpm.toml with a [component] table)")
    found = pygit2.discover_repository(str(comp_dir))
    if found is None:
        raise PublishError(f"{comp_dir} is not in a git repository",
                           hint="a component is published from a tag of its git repository: `git init`, commit, "
                                "`git tag v0.1.0`")
    repo = pygit2.Repository(found)
    try:
        if repo.is_bare or repo.workdir is None:
            raise PublishError(f"{found} is a bare repository; publish from a working tree")
        workdir = Path(repo.workdir).resolve()
        rel = comp_dir.relative_to(workdir).as_posix()
        subdir = None if rel in ("", ".") else rel
        manifest_rel = f"{subdir}/ckpm.toml" if subdir else "ckpm.toml"
        if repo.head_is_unborn:
            raise PublishError(f"{workdir} has no commit yet", hint="commit the component and tag the version")
        if not allow_dirty:
            dirty = _dirty(repo)
            if dirty:
                raise PublishError(f"the working tree of {workdir} is not clean: " + ", ".join(dirty),
                                   hint="commit (or stash) the changes, or add the files to .gitignore; "
                                        "a published version is exactly what its tag holds")
        head = str(repo.head.peel(pygit2.Commit).id)
        if tag is not None:
            tag = tag.removeprefix("refs/tags/")
            commit = _peel_commit(repo, f"refs/tags/{tag}")
            if commit is None:
                raise PublishError(f"{workdir} has no tag {tag!r}", hint=f"`git tag {tag}` tags HEAD")
            if tag_version(tag) is None:
                raise PublishError(f"tag {tag!r} does not name a version (v1.2.0 or 1.2.0)")
        else:
            at_head = sorted(r[len("refs/tags/"):] for r in repo.references
                             if r.startswith("refs/tags/") and _peel_commit(repo, r) == head)
            versions = {}
            for t in at_head:
                v = tag_version(t)
                if v is None:
                    continue
                if v not in versions or t.startswith(("v", "V")):
                    versions[v] = t
            if not versions:
                raise PublishError(f"HEAD ({head[:12]}) of {workdir} has no version tag"
                                   + (f" (it has {', '.join(at_head)})" if at_head else ""),
                                   hint="tag the release (`git tag v1.2.0`) and push the tag, or pass --tag TAG")
            if len(versions) > 1:
                raise PublishError(f"HEAD ({head[:12]}) has tags of several versions: "
                                   + ", ".join(sorted(versions.values())), hint="pass --tag TAG")
            (tag,) = versions.values()
            commit = head
        c = repo.get(commit)
        assert isinstance(c, pygit2.Commit)
        try:
            obj = c.tree[manifest_rel]
        except KeyError:
            raise PublishError(f"tag {tag} ({commit[:12]}) has no {manifest_rel}") from None
        blob = repo[obj.id]
        if not isinstance(blob, pygit2.Blob) or blob.size > (1 << 20):
            raise PublishError(f"{manifest_rel} at tag {tag} is not a file of at most 1 MiB")
        origin = f"{manifest_rel} at tag {tag}"
        try:
            text = bytes(blob.data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError(origin, f"not UTF-8 text ({e.reason})") from None
        data = parse_component_manifest(text, origin)
        version = _LEADING_V.sub("", tag)
        mv = data.get("version")
        if mv is not None and try_version(str(mv)) != tag_version(tag):
            raise PublishError(f"{origin} says version {mv}, but the tag is {tag}",
                               hint="the tag names the version: make them agree (fix ckpm.toml and tag again, "
                                    "or tag the version the manifest says)")
        url = _source_url(repo, workdir, source_url)
        cksum = tree_cksum_of(repo, commit, subdir)
    finally:
        repo.free()
    source: dict[str, Any] = {"git": url, "tag": tag, "rev": commit}
    if subdir:
        source["subdir"] = subdir
    line: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
    line.update({"version": version, "source": source, "cksum": cksum, "yanked": False, "pubtime": pubtime_now()})
    try:
        check_entry(line, name=line["name"])
    except IndexDataError as e:
        raise PublishError(f"{origin}: the index line would be invalid: {e.message}") from None
    problems = recipe_and_rule_problems(line)
    if problems:
        raise PublishError(f"{origin}: users of the index would refuse parts of it", details=problems,
                           hint="fix them in ckpm.toml and tag a new version")
    release = Release(line, workdir, subdir, tag, commit)
    if check_remote:
        _check_remote_tag(release, s)
    return release


def recipe_and_rule_problems(line: Mapping[str, Any]) -> list[str]:
    """What readers would refuse in a line's ``install`` recipes, ``detect`` rules and ``run``
    program (checked as ``ckpm sync``, detection and ``ckpm run`` check them)."""
    from ckpm.model.recipe_checks import check_recipe
    from ckpm.detect.trust import validate_rule
    from ckpm.model.program import parse_program

    from ckpm.model.source import local_file_sources

    out: list[str] = [f"{f} names a local file, which nobody else can read (use an http(s) URL)"
                      for f in local_file_sources(line)]
    for i, recipe in enumerate(line.get("install") or (), 1):
        out.extend(f"[[install]] {i}: {p}" for p in check_recipe(recipe))
    for i, rule in enumerate(line.get("detect") or (), 1):
        clean, problems = validate_rule(rule, component=str(line.get("name")), number=i)
        if clean is None:
            out.extend(problems or [f"[[detect]] {i}: not a valid rule"])
    if line.get("run") is not None:
        try:
            parse_program(line["run"], name=str(line.get("name")), where="[run]")
        except CkpmError as e:
            out.append(e.message)
    return out


def _check_remote_tag(rel: Release, s: Settings) -> None:
    """The tag must be at the source URL, on the released commit: that is what users fetch."""
    from ckpm.index.gitsource import GitComponentSource

    url = rel.line["source"]["git"]
    if s.offline:
        s.reporter.warning(f"offline: not checked that tag {rel.tag} is at {url}")
        return
    gs = GitComponentSource(url, subdir=rel.subdir, cache_dir=s.cache_dir, reporter=s.reporter)
    try:
        now = gs.commit_of(rel.tag)
    except CkpmError as e:
        raise PublishError(f"cannot check tag {rel.tag} at {url}: {e.message}",
                           hint="push the tag where users fetch it from, or pass --source-url URL") from None
    if now is None:
        raise PublishError(f"tag {rel.tag} is not at {url}", hint=f"push it: `git push origin {rel.tag}`")
    if now != rel.commit:
        raise PublishError(f"tag {rel.tag} points to {now} at {url}, but to {rel.commit} here",
                           hint="push the tag (a published tag never moves: if it was pushed before, "
                                "make a new version)")


# -- checks against the target ---------------------------------------------------------------


def _published_commit(line: Mapping[str, Any]) -> str | None:
    src = line.get("source")
    if not isinstance(src, Mapping):
        return None
    c = src.get("rev") or src.get("commit")
    return c if isinstance(c, str) else None


def _existing_error(rel: Release, existing: Mapping[str, Any], where: str) -> CkpmError:
    """The version is there already: TagMoved when from another commit, else AlreadyPublished."""
    from ckpm.index.publish import AlreadyPublished

    was = _published_commit(existing)
    if was is not None and was != rel.commit:
        return TagMoved(rel.name, rel.version, rel.tag, str(rel.line["source"]["git"]), was, rel.commit)
    return AlreadyPublished(f"{rel.name} {rel.version} is already published in {where}"
                            + (f" (from the same commit {rel.commit[:12]})" if was == rel.commit else ""),
                            existing=dict(existing),
                            hint="a published version never changes: publish a new version (a new tag)")


def _reader(target: Target, s: Settings) -> Any:
    """An index client on the target, brought up to date."""
    if target.kind == "registry":
        from ckpm.index.http import HttpIndex

        assert target.api is not None
        idx: Any = HttpIndex(target.api, cache_dir=s.cache_dir, reporter=s.reporter)
    else:
        from ckpm.index.git import GitIndex

        url = target.url
        if not url.startswith("git+"):
            url = "git+" + (url if "://" in url else Path(url).expanduser().resolve().as_uri())
        idx = GitIndex(url, cache_dir=s.cache_dir, reporter=s.reporter)
    idx.update()
    return idx


def _refresh_reader(target: Target, s: Settings) -> None:
    """After a write: bring this machine's cached copy of the index up to date, so that the
    next `ckpm lock` here sees the change (others run `ckpm index update` or wait for theirs)."""
    try:
        _reader(target, s).close()
    except CkpmError as e:
        s.reporter.warning(f"the cached copy of {target.url} was not updated: {e.message}")


def check_target(rel: Release, target: Target, s: Settings) -> list[str]:
    """Refuse a version the target has (TagMoved when from another commit) or a dependency it
    lacks; returns notes (a dependency whose range no published version meets yet)."""
    from ckpm.model.requirement import requirement_from_index_dep

    idx = _reader(target, s)
    try:
        where = target.describe()
        if target.kind == "git":
            from ckpm.index.publish import read_line

            existing = read_line(target.url, rel.name, rel.version, settings=s)
        else:
            e = idx.find_entry(rel.name, rel.version)
            existing = e.to_json() if e is not None else None
        if existing is not None:
            raise _existing_error(rel, existing, where)
        missing: list[str] = []
        notes: list[str] = []
        summaries = None
        for raw in rel.line.get("deps", []):
            name = str(raw.get("name"))
            if name.startswith("__") or raw.get("git"):
                continue  # a host fact; a git dependency needs no index
            entries = idx.entries(name)
            if entries:
                req = requirement_from_index_dep(raw)
                if not any(req.spec.contains(en.version, prereleases=True) for en in entries if not en.yanked):
                    notes.append(f"no published version of {name} meets {req.spec.text} yet")
                continue
            tags = set(raw.get("tags") or ())
            if tags:
                if summaries is None:
                    summaries = idx.summaries()
                if any(tags <= set(sm.tags) for sm in summaries):
                    continue
            missing.append(name + (f" (tags {', '.join(sorted(tags))})" if tags else ""))
        if missing:
            raise PublishError(f"{rel.name} {rel.version} depends on what {where} does not have: "
                               + ", ".join(missing),
                               hint="publish those first, or depend on them by git URL "
                                    "(`name = { git = URL, version = ... }`)")
        for n in notes:
            s.reporter.warning(f"{rel.name} {rel.version}: {n}")
        return notes
    finally:
        idx.close()


# -- publish and yank ------------------------------------------------------------------------


@dataclass
class PublishResult:
    release: Release
    target: Target
    dry_run: bool
    commit: str | None = None  # the index commit (a git index or the registry's)
    attempts: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.release.to_dict(), "target": self.target.describe(), "index": self.target.api or self.target.url,
                "dry_run": self.dry_run, "index_commit": self.commit, "attempts": self.attempts, "notes": self.notes}


def publish(path: Path | str | None = None, *, index: str | None = None, registry: str | None = None,
            token: str | None = None, tag: str | None = None, source_url: str | None = None,
            dry_run: bool = False, settings: Settings | None = None, check_remote: bool = True,
            before_push: Callable[[], None] | None = None, direct: bool | None = None) -> PublishResult:
    """Publish the tagged version of the component in ``path`` to a git index or a registry.

    Everything is checked first (:func:`prepare_release`, :func:`check_target`); with
    ``dry_run`` nothing is written. ``before_push`` and ``direct`` are handed to
    :func:`ckpm.index.publish.publish_line` (``direct=False`` pushes even to a local bare
    index; tests use both to race another publish).
    """
    s = settings if settings is not None else Settings()
    target = resolve_target(index, registry, s)
    auth = None
    if target.kind == "registry":
        assert target.api is not None
        auth = token_for(target.api, s, token)
        if auth is None and not dry_run:
            raise AuthError(f"no token for {target.api}",
                            hint=f"run `ckpm login --registry {target.api}`, set ${TOKEN_ENV}, or pass --token")
    rel = prepare_release(path, tag=tag, source_url=source_url, settings=s, check_remote=check_remote)
    notes = check_target(rel, target, s)
    result = PublishResult(rel, target, dry_run, notes=notes)
    if dry_run:
        return result
    if target.kind == "git":
        from ckpm.index.publish import AlreadyPublished, publish_line

        try:
            change = publish_line(target.url, rel.line, settings=s, before_push=before_push, direct=direct,
                                  message=f"Publish {rel.name} {rel.version}\n\nfrom {rel.line['source']['git']} "
                                          f"tag {rel.tag} ({rel.commit})")
        except AlreadyPublished as e:  # published meanwhile (after our check)
            raise _existing_error(rel, e.existing, target.describe()) from None
        result.commit, result.attempts = change.commit, change.attempts
        _refresh_reader(target, s)
        return result
    assert target.api is not None and auth is not None
    try:
        out = _http(s, "PUT", f"{target.api}/api/v1/publish", auth=auth, body={"line": rel.line},
                    what=f"publishing to {target.api}")
    except RegistryError as e:
        if e.status == 409:
            idx = _reader(target, s)
            try:
                en = idx.find_entry(rel.name, rel.version)
            finally:
                idx.close()
            if en is not None:
                raise _existing_error(rel, en.to_json(), target.describe()) from None
        raise
    pub = out.get("published") if isinstance(out, dict) else None
    if isinstance(pub, dict) and isinstance(pub.get("commit"), str):
        result.commit = pub["commit"][:64]
    return result


def parse_spec(spec: str) -> tuple[str, str]:
    """``NAME@VERSION`` → (name, version)."""
    from ckpm.model.entry import valid_name
    from ckpm.model.version import try_version

    name, sep, version = spec.partition("@")
    if not sep or not valid_name(name) or try_version(version) is None:
        raise UsageError(f"{spec!r} is not NAME@VERSION (e.g. lib-foo@1.2.0)")
    return name, version


@dataclass
class YankResult:
    name: str
    version: str
    yanked: bool
    target: Target
    changed: bool = True
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "yanked": self.yanked, "changed": self.changed,
                "target": self.target.describe(), "index_commit": self.commit}


def yank(spec: str, *, undo: bool = False, index: str | None = None, registry: str | None = None,
         token: str | None = None, settings: Settings | None = None) -> YankResult:
    """Mark ``NAME@VERSION`` yanked (``undo``: not yanked): new resolutions skip it; locks that
    pin it keep installing it."""
    s = settings if settings is not None else Settings()
    name, version = parse_spec(spec)
    target = resolve_target(index, registry, s)
    if target.kind == "git":
        from ckpm.index.publish import set_yanked

        ch = set_yanked(target.url, name, version, not undo, settings=s)
        _refresh_reader(target, s)
        return YankResult(name, version, not undo, target, ch.changed, ch.commit)
    assert target.api is not None
    auth = token_for(target.api, s, token)
    if auth is None:
        raise AuthError(f"no token for {target.api}",
                        hint=f"run `ckpm login --registry {target.api}`, set ${TOKEN_ENV}, or pass --token")
    path = f"{target.api}/api/v1/components/{urllib.parse.quote(name)}/{urllib.parse.quote(version, safe='')}"
    if undo:
        out = _http(s, "PUT", f"{path}/unyank", auth=auth, what=f"unyanking {name} {version}")
    else:
        out = _http(s, "DELETE", f"{path}/yank", auth=auth, what=f"yanking {name} {version}")
    y = out.get("yanked") if isinstance(out, dict) else None
    return YankResult(name, version, bool(y) if isinstance(y, bool) else not undo, target)
