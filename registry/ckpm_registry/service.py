"""What the HTTP API does, without HTTP: publish, yank, owners, search (raises ApiError).

The web layer (:mod:`ckpm_registry.app`) parses requests and calls these; tests may call
them directly too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ckpm.errors import IndexReadError
from ckpm.index.layout import CONFIG, SUMMARY
from ckpm.index.gitwriter import AlreadyPublished, NotPublished, publish_line, set_yanked
from ckpm.model.entry import IndexDataError, IndexEntry, normalize_name, valid_name
from ckpm.model.source import local_file_sources
from ckpm.model.version import try_version

from ckpm_registry.errors import ApiError, IndexStoreError, forbidden, invalid, not_found
from ckpm_registry.owners import MAX_OWNERS_PER_NAME
from ckpm_registry.store import IndexStore, checked_entry
from ckpm_registry.tokens import TokenStore, valid_login

MAX_QUERY_LEN = 256
MAX_QUERY_TAGS = 64
MAX_LIMIT = 100


def _short(value: Any, n: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _unavailable(e: Exception) -> ApiError:
    msg = e.message if isinstance(e, IndexReadError) else str(e)
    return ApiError(503, "index-unavailable", f"the index cannot be written now: {msg}")


@dataclass
class Registry:
    store: IndexStore
    tokens: TokenStore

    # -- who ---------------------------------------------------------------------------------

    def user(self, authorization: str | None) -> str:
        """The login of ``Authorization: Bearer <token>`` (401 otherwise)."""
        from ckpm_registry.errors import unauthorized

        if not authorization:
            raise unauthorized()
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be `Bearer <token>`")
        login = self.tokens.user_of(token.strip())
        if login is None:
            raise unauthorized("the token is not valid on this registry (`ckpm login` stores a new one)")
        return login

    def _owners_or_refuse(self, user: str, name: str, *, new_ok: bool) -> list[str]:
        """The owners of ``name``; 403 unless ``user`` is one (a new name: allowed when ``new_ok``)."""
        owners = self.store.owners.of(name)
        if owners:
            if user not in owners:
                raise forbidden(f"{name} is owned by {', '.join(owners)}; {user} may not change it "
                                "(an owner can add you: PUT /api/v1/components/NAME/owners)")
            return owners
        if self.store.has_component(name):
            raise forbidden(f"{name} has no owner on this registry; the operator can add one "
                            f"(`ckpm-registry owners add {name} LOGIN`)")
        if not new_ok:
            raise not_found(f"no component {name} on this registry")
        return []

    # -- publish -----------------------------------------------------------------------------

    def publish(self, user: str, line: Any) -> dict[str, Any]:
        if not isinstance(line, dict):
            raise ApiError(400, "bad-request", 'the body must be {"line": {...}}: one index line as a JSON object')
        try:
            entry = checked_entry(line)
        except IndexDataError as e:
            raise invalid(f"the line is not a valid index line: {e.message}") from None
        name = entry.name
        local = local_file_sources(line)
        if local:
            raise invalid(f"{local[0]} names a local file: a registry's sources are URLs everyone can fetch "
                          "(http or https)")
        if name in (CONFIG, SUMMARY):
            raise invalid(f"{name} is the name of an index file; readers would never find a component of that name")
        with self.store.writing():
            self._sync_export()
            self._refuse_other_spelling(user, name)
            owners = self._owners_or_refuse(user, name, new_ok=True)
            unknown = [str(d.get("name")) for d in entry.deps_raw if not self.store.known_dependency(d)]
            if unknown:
                raise invalid(f"{name} {entry.version_text} depends on {', '.join(sorted(unknown))}, "
                              "which this registry does not have (publish those first, or use a git dependency)")
            if not owners:  # first: a process killed after the commit leaves the name owned
                self.store.owners.set(name, [user])
            try:
                change = publish_line(str(self.store.gitdir), line, signature=(user, f"{user}@ckpm-registry"),
                                      settings=self.store.settings, direct=True)
            except BaseException as e:
                if not owners:
                    self.store.owners.set(name, [])
                if isinstance(e, AlreadyPublished):
                    raise ApiError(409, "already-published", _already(name, entry, e.existing)) from None
                if isinstance(e, IndexDataError):
                    raise invalid(e.message) from None
                if isinstance(e, IndexReadError):
                    raise _unavailable(e) from None
                raise
            self.store.sync_export()
        return {"name": change.name, "version": change.version, "commit": change.commit}

    def _refuse_other_spelling(self, user: str, name: str) -> None:
        """Names are compared in :func:`normalize_name` form: ``Foo_bar`` is ``foo-bar``. A name
        the registry has under another spelling is refused (403 when another owner has it)."""
        norm = normalize_name(name)
        try:
            names = {x.name for x in self.store.summaries()}
        except IndexReadError:
            names = set()
        names.update(self.store.owners.all())
        other = next((n for n in sorted(names) if n != name and normalize_name(n) == norm), None)
        if other is None:
            return
        owners = self.store.owners.of(other)
        same = f"{name} is the name {other} (names are compared with runs of '-', '_' and '.' alike)"
        if user not in owners:
            raise forbidden(f"{same}, which {', '.join(owners) if owners else 'nobody on this registry'} owns")
        raise ApiError(409, "name-taken", f"{same}: publish it as {other}")

    def _sync_export(self) -> None:
        """Bring the export up to the branch tip before a write (a 503 when it cannot be read)."""
        try:
            self.store.sync_export()
        except IndexStoreError as e:
            raise _unavailable(e) from None

    # -- yank --------------------------------------------------------------------------------

    def set_yanked(self, user: str, name: str, version: str, yanked: bool) -> dict[str, Any]:
        if not valid_name(name):
            raise not_found(f"no component {_short(name)} on this registry (not a valid name)")
        if try_version(version) is None:
            raise not_found(f"{name} has no version {_short(version)} (not a version)")
        with self.store.writing():
            self._sync_export()
            self._owners_or_refuse(user, name, new_ok=False)
            try:
                set_yanked(str(self.store.gitdir), name, version, yanked, signature=(user, f"{user}@ckpm-registry"),
                           settings=self.store.settings, direct=True)
            except NotPublished as e:
                raise not_found(e.message) from None
            except IndexDataError as e:
                raise invalid(e.message) from None
            except IndexReadError as e:
                raise _unavailable(e) from None
            self.store.sync_export()
        return {"name": name, "version": version, "yanked": yanked}

    # -- owners ------------------------------------------------------------------------------

    def owners(self, name: str) -> list[str]:
        if not valid_name(name):
            raise not_found(f"no component {_short(name)} on this registry (not a valid name)")
        owners = self.store.owners.of(name)
        if not owners and not self.store.has_component(name):
            raise not_found(f"no component {name} on this registry")
        return owners

    def change_owners(self, user: str, name: str, users: Any, *, add: bool) -> list[str]:
        if not valid_name(name):
            raise not_found(f"no component {_short(name)} on this registry (not a valid name)")
        if not isinstance(users, list) or not users or not all(isinstance(u, str) for u in users):
            raise invalid('the body must be {"users": ["login", ...]} with at least one login')
        if len(users) > MAX_OWNERS_PER_NAME:
            raise invalid(f"at most {MAX_OWNERS_PER_NAME} owners per name")
        bad = [u for u in users if not valid_login(u)]
        if bad:
            raise invalid(f"not a login: {_short(bad[0])}")
        with self.store.writing():
            owners = self._owners_or_refuse(user, name, new_ok=False)
            if add:
                unknown = sorted(set(users) - self.tokens.users())
                if unknown:
                    raise invalid(f"no user {', '.join(unknown)} on this registry")
                new = sorted(set(owners) | set(users))
                if len(new) > MAX_OWNERS_PER_NAME:
                    raise invalid(f"at most {MAX_OWNERS_PER_NAME} owners per name")
            else:
                new = sorted(set(owners) - set(users))
                if not new:
                    raise ApiError(409, "last-owner", f"{name} must keep at least one owner; add another first")
            self.store.owners.set(name, new)
        return new

    # -- reading -----------------------------------------------------------------------------

    def component(self, name: str) -> list[IndexEntry]:
        if not valid_name(name):
            raise not_found(f"no component {_short(name)} on this registry (not a valid name)")
        try:
            entries = self.store.entries(name)
        except IndexReadError as e:
            raise ApiError(502, "bad-index-data", e.message) from None
        if not entries:
            raise not_found(f"no component {name} on this registry")
        return entries

    def search(self, q: str = "", tags: str = "", limit: int = 20) -> dict[str, Any]:
        if len(q) > MAX_QUERY_LEN:
            raise invalid(f"q is longer than {MAX_QUERY_LEN} characters")
        want = {t.strip().lower() for t in tags.split(",") if t.strip()}
        if len(want) > MAX_QUERY_TAGS:
            raise invalid(f"at most {MAX_QUERY_TAGS} tags")
        if not 1 <= limit <= MAX_LIMIT:
            raise invalid(f"limit must be between 1 and {MAX_LIMIT}")
        text = q.strip().lower()
        try:
            summaries = self.store.summaries()
        except IndexReadError as e:
            raise ApiError(502, "bad-index-data", e.message) from None
        scored = []
        for s in summaries:
            if want and not want <= s.tags:
                continue
            if text:
                if s.name == text:
                    rank = 0
                elif s.name.startswith(text):
                    rank = 1
                elif text in s.name:
                    rank = 2
                elif text in s.description.lower() or any(text == t for t in s.tags):
                    rank = 3
                else:
                    continue
            else:
                rank = 0
            scored.append((rank, s.name, s))
        scored.sort(key=lambda x: (x[0], x[1]))
        out = []
        for _, _, s in scored[:limit]:
            try:
                entries = self.store.entries(s.name)
            except IndexReadError:
                entries = []
            yanked = sorted({e.version_text for e in entries if e.yanked})
            out.append({"name": s.name, "kind": s.kind, "description": s.description, "tags": sorted(s.tags),
                        "versions": list(s.versions), "yanked": yanked, "latest": latest(entries)})
        return {"components": out, "total": len(scored)}


def latest(entries: list[IndexEntry]) -> str | None:
    """The newest version that is not yanked (a release before a pre-release), or None."""
    live = [e for e in entries if not e.yanked]
    releases = [e for e in live if not e.version.is_prerelease] or live
    return max(releases, key=lambda e: e.version).version_text if releases else None


def _already(name: str, entry: IndexEntry, existing: Mapping[str, Any]) -> str:
    src = existing.get("source")
    old: Mapping[str, Any] = src if isinstance(src, dict) else {}
    new: Mapping[str, Any] = entry.source or {}
    old_rev, new_rev = old.get("rev"), new.get("rev")
    if old_rev and new_rev and old_rev != new_rev:
        tag = new.get("tag") or old.get("tag") or entry.version_text
        return (f"{name} {entry.version_text} is already published from commit {old_rev}; this line names "
                f"commit {new_rev} (tag {tag} moved since it was published): a published version never "
                "changes, publish a new version")
    return f"{name} {entry.version_text} is already published; a published version never changes"
