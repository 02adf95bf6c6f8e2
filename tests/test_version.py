"""Versions of real software: parsing, total order, and ranges."""
from __future__ import annotations

import pytest

from ckpm.errors import SpecifierError, VersionError
from ckpm.model.version import parse_specifier, parse_version, try_version

# Real `--version` outputs and tags, in ascending order.
ORDERED = [
    "1.0.0-beta.2",       # semver pre-release
    "1.0.0",
    "1.1.1",
    "1.1.1k",             # OpenSSL letter releases come after 1.1.1
    "1.1.1w",
    "1.13.1",
    "2.0.0rc1",
    "2.0.0",
    "2.39.5",             # git
    "2.39.5.windows.1",   # git for Windows
    "v3.0.0-rc1",         # a tag with a leading v and a dash pre-release
    "3.0.0",
    "12.2.0",
    "12.2.0-14",          # Debian revision of gcc
    "12.2.0-14+deb12u1",
    "2023.06",            # calendar versions
    "2024.1",
]


def test_total_order_of_real_versions() -> None:
    parsed = [parse_version(v) for v in ORDERED]
    assert sorted(parsed) == parsed
    assert [str(v) for v in parsed] == ORDERED  # the original text is kept


@pytest.mark.parametrize("a,b", [("v1.2.0", "1.2.0"), ("2023.06", "2023.6"), ("1.0", "1.0.0")])
def test_equal_spellings(a: str, b: str) -> None:
    assert parse_version(a) == parse_version(b)


@pytest.mark.parametrize("text", ["latest", "release-candidate", "1.x", "", "v", "main"])
def test_not_versions(text: str) -> None:
    assert try_version(text) is None
    with pytest.raises(VersionError):
        parse_version(text)


@pytest.mark.parametrize(
    "spec,version,ok",
    [
        (">=1.13,<2", "1.13.1", True),
        (">=1.13,<2", "2.0.0", False),
        (">=1.13,<2", "2.0.0rc1", False),      # <2 does not admit 2.0 pre-releases
        ("*", "5.0", True),
        ("*", "5.0rc1", False),                 # pre-releases only when named
        (">=3.0.0-rc1", "v3.0.0-rc1", True),   # named pre-release in the range
        (">=1.1.1k", "1.1.1w", True),
        (">=1.1.1k", "1.1.1", False),
        ("==1.2.*", "1.2.9", True),
        ("==1.2.*", "1.3.0", False),
        ("!=1.2.*", "1.3.0", True),
        ("~=1.4", "1.9", True),
        ("~=1.4", "2.0", False),
        ("^0.3", "0.3.9", True),
        ("^0.3", "0.4.0", False),
        ("^1.2", "1.9.0", True),
        ("~1.2.3", "1.2.9", True),
        ("~1.2.3", "1.3.0", False),
        ("==12.2.0", "12.2.0", True),
        (">12.2.0", "12.2.0-14", True),         # a Debian revision is newer than the upstream release
        ("1.0", "1.0.0", True),                 # a bare version means ==
        ("<=2.0", "2.0+local", True),
    ],
)
def test_specifier(spec: str, version: str, ok: bool) -> None:
    assert parse_specifier(spec).contains(parse_version(version)) is ok


def test_prerelease_flag_admits_prereleases() -> None:
    assert parse_specifier("*").contains(parse_version("2.0rc1"), prereleases=True)


@pytest.mark.parametrize("bad", [">=x", ">=1.0,<<2", "~=1", ">=1.*"])
def test_bad_specifiers(bad: str) -> None:
    with pytest.raises(SpecifierError):
        parse_specifier(bad)
