"""`ckpm import ck`: CK repositories written in CK's own layout in tmp_path, imported, locked,
and run with the machine's compiler — the program's library built in the store from a CK
package, its data set from a CK dataset entry, its compiler found by a CK soft entry.

Nothing of a CK entry may run during the import: the entries carry a customize.py and
scripts that would leave a mark if they did.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ckpm
from ckpm.ck import CkImportError, import_ck
from ckpm.ck.layout import MAX_META_BYTES, read_repo
from ckpm.ck.mapping import DATASET_FILE
from ckpm.index.layout import entry_path
from ckpm.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
needs_cc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

PROGRAM_C = r"""
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "ckhello.h"

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--greet") == 0) {
        FILE *o = fopen(argv[2], "w");
        if (!o) return 2;
        fprintf(o, "%s\n", ckhello_greeting());
        fclose(o);
        printf("greeted\n");
        return 0;
    }
    if (argc != 3) { fprintf(stderr, "usage: hello FILE OUT | --greet OUT\n"); return 1; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[1]); return 3; }
    long words = 0; int c, in = 0;
    while ((c = fgetc(f)) != EOF) {
        if (c == ' ' || c == '\n' || c == '\t') in = 0;
        else if (!in) { in = 1; words++; }
    }
    fclose(f);
    const char *scale = getenv("CK_SCALE");
    words *= scale ? atol(scale) : 1;
    FILE *o = fopen(argv[2], "w");
    if (!o) return 4;
    fprintf(o, "words: %ld\n", words);
    fclose(o);
    printf("words: %ld\n", words);
    return 0;
}
"""
LIB_C = 'const char *ckhello_greeting(void) { return "hello from a CK package"; }\n'
LIB_H = "const char *ckhello_greeting(void);\n"
WORDS = "the quick brown fox\njumps over the lazy dog\n"  # 9 words
# code that would leave a mark if anything ran it
HOOK = "import pathlib\npathlib.Path('{mark}').write_text('customize.py ran')\n"
SCRIPT = "#!/bin/sh\ntouch '{mark}'\n"


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, (dict, list)):
        path.write_text(json.dumps(data, indent=2))
    elif isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


def _entry(repo: Path, module: str, alias: str, uid: str, meta: Any, files: dict[str, str] | None = None) -> Path:
    d = repo / module / alias
    _write(d / ".cm" / "meta.json", meta)
    _write(d / ".cm" / "info.json", {"backup_data_uid": uid, "data_name": alias})
    _write(d / ".cm" / "desc.json", {})
    _write(repo / module / ".cm" / f"alias-a-{alias}", uid + "\n")
    _write(repo / module / ".cm" / f"alias-u-{uid}", alias + "\n")
    for rel, text in (files or {}).items():
        _write(d / rel, text)
    return d


def make_ck_repo(root: Path, mark: Path) -> Path:
    """A CK repository as CK writes it: a program, a data set, gcc's soft entry, a package, and broken entries."""
    repo = root / "ck-demo"
    _write(repo / ".ckr.json", {"data_alias": "ck-demo", "data_uid": "0123456789abcdef",
                                "dict": {"shared": "git", "url": "https://example.org/ck-demo"}})
    _entry(repo, "program", "hello-ck", "1111111111111111", {
        "backup_data_uid": "1111111111111111", "data_name": "hello-ck", "main_language": "c",
        "compiler_env": "CK_CC", "process_in_tmp": "yes", "program": "yes",
        "source_files": ["hello.c"], "target_file": "a",
        "build_compiler_vars": {"HELLO_CK": ""},
        "extra_ld_vars": "$<<CK_EXTRA_LIB_M>>$",
        "compile_deps": {
            "compiler": {"local": "yes", "name": "C compiler", "sort": 10, "tags": "compiler,lang-c",
                         "version_from": [4, 0]},
            "ckhello": {"local": "yes", "name": "ckhello library", "sort": 20, "tags": "lib,ckhello"},
        },
        "run_vars": {"CK_SCALE": 1, "LD_PRELOAD": "/tmp/evil.so", "PATH": "/tmp/evil"},
        "run_cmds": {
            "count": {"dataset_tags": ["dataset", "text"], "ignore_return_code": "no",
                      "run_time": {"run_cmd_main": "$#BIN_FILE#$ $#dataset_path#$$#dataset_filename#$ tmp-output.tmp",
                                   "run_cmd_out1": "tmp-output1.tmp", "run_cmd_out2": "tmp-output2.tmp",
                                   "run_correctness_output_files": ["tmp-output.tmp"],
                                   "run_output_files": ["tmp-output.tmp"]}},
            "greet": {"ignore_return_code": "no",
                      "run_time": {"run_cmd_main": "$#BIN_FILE#$ --greet greeting.txt",
                                   "run_output_files": ["greeting.txt"]}},
            "piped": {"run_time": {"run_cmd_main": "$#BIN_FILE#$ x y | tee out.txt"}},
        },
        "tags": ["program", "demo", "lang-c", "small"],
    }, {"hello.c": PROGRAM_C, "customize.py": HOOK.format(mark=mark)})
    _entry(repo, "dataset", "text-ck-0001", "2222222222222222",
           {"dataset_files": ["words.txt"], "tags": ["dataset", "text", "small"]},
           {"words.txt": WORDS})
    _entry(repo, "soft", "compiler.gcc", "3333333333333333", {
        "auto_detect": "yes",
        "customize": {"soft_file": {"linux": "gcc", "win": "gcc.exe"},
                      "soft_version_cmd": {"linux": "--version > $#filename#$ 2>&1"},
                      "env_prefix": "CK_ENV_COMPILER_GCC", "only_for_target_os_tags": ["linux", "windows"]},
        "soft_name": "GNU C compiler", "tags": ["compiler", "gcc", "lang-c", "lang-cpp"],
    }, {"customize.py": HOOK.format(mark=mark)})
    _entry(repo, "package", "lib-ckhello", "4444444444444444", {
        "customize": {"version": "1.2"}, "process_script": "process",
        "deps": {"compiler": {"local": "yes", "name": "C compiler", "tags": "compiler,lang-c"}},
        "end_full_path": {"linux": "lib/libckhello.a"},
        "tags": ["lib", "ckhello", "lang-c"],
    }, {"ckhello.c": LIB_C, "ckhello.h": LIB_H,
        "process.sh": "#!/bin/bash\nexport LIB_NAME=libckhello\n" + SCRIPT.format(mark=mark) + ". ./ck-make.sh\n",
        "ck-make.sh": '#!/bin/bash\nexport CK_SOURCE_FILES="ckhello.c"\nexport CK_INCLUDE_FILE=ckhello.h\n'
                      '${CK_CC} -c ${CK_SOURCE_FILES}\n'})
    # broken entries: each reported, none fatal
    bad = repo / "program" / "broken-json" / ".cm"
    _write(bad / "meta.json", '{"source_files": ["a.c"],\n  "tags": [oops]}')
    _entry(repo, "dataset", "escape", "5555555555555555",
           {"dataset_files": ["../../../etc/passwd"], "tags": ["dataset"]}, {"readme.txt": "x"})
    _entry(repo, "soft", "tool.evil", "6666666666666666",
           {"customize": {"soft_file": {"linux": "rm"}}, "tags": ["tool", "evil"]})
    _entry(repo, "program", "needs-shell", "7777777777777777", {
        "source_files": ["m.c"], "main_language": "c",
        "run_cmds": {"default": {"run_time": {"run_cmd_main": "$#BIN_FILE#$ > out.txt; rm -rf ~"}}}},
        {"m.c": "int main(void){return 0;}\n"})
    _entry(repo, "program", "fortran-thing", "8888888888888888",
           {"source_files": ["a.f"], "main_language": "f77", "run_cmds": {"default": {}}}, {"a.f": "      END\n"})
    (repo / "program" / "no-meta" / ".cm").mkdir(parents=True)
    return repo


@pytest.fixture
def ck_repo(tmp_path: Path) -> tuple[Path, Path]:
    mark = tmp_path / "ran.txt"
    return make_ck_repo(tmp_path, mark), mark


def ckpm_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ckpm", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=os.environ.copy())


def line_of(index: Path, name: str) -> dict[str, Any]:
    return json.loads((index / entry_path(name)).read_text().splitlines()[-1])


def test_import_maps_every_module_and_reports_what_it_skipped(ck_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo, mark = ck_repo
    index = tmp_path / "ck-index"
    report = import_ck(repo, index, settings=Settings(cache_dir=tmp_path / "cache"))
    assert not mark.exists(), "the import ran code of an entry"
    assert report.counts() == {
        "dataset": {"entries": 2, "imported": 1, "skipped": 1},
        "package": {"entries": 1, "imported": 1, "skipped": 0},
        "program": {"entries": 5, "imported": 1, "skipped": 4},
        "soft": {"entries": 2, "imported": 1, "skipped": 1},
    }
    why = {m.entry.where: m.skipped for m in report.items if m.line is None}
    why.update({s.where: s.reason for s in report.unreadable})
    assert "not JSON (line 2" in why["program/broken-json"]
    assert "meta.json is missing" in why["program/no-meta"]
    assert "not a file of the entry" in why["dataset/escape"]
    assert "rm" in why["soft/tool.evil"] and "rule ignored" in why["soft/tool.evil"]
    assert why["program/needs-shell"].startswith("no run command could be carried over (run_cmds.")
    assert "f77" in why["program/fortran-thing"]

    prog = line_of(index, "program-hello-ck")
    assert prog["ck"] == {"module": "program", "alias": "hello-ck", "uid": "1111111111111111", "repo": "ck-demo"}
    assert prog["kind"] == "program" and "demo" in prog["tags"]
    assert prog["description"] == "CK program hello-ck (1111111111111111): hello-ck"
    assert prog["deps"] == [
        {"name": "compiler", "tags": ["compiler", "lang-c"], "req": ">=4.0", "kind": "build"},
        {"name": "ckhello", "tags": ["lib", "ckhello"]},
        {"name": "ck-data-dataset-text", "tags": ["dataset", "text"]},
    ]
    run = prog["run"]
    assert run["sources"] == ["src/hello.c"] and run["compiler"] == "compiler"
    assert run["cflags"] == ["-O3", "-DHELLO_CK"] and run["ldflags"] == ["-lckhello", "-lm"]
    assert run["env"] == {"CK_SCALE": "1"} and run["input"] == "ck-data-dataset-text"
    assert run["commands"] == {
        "count": {"args": ["{input}/" + DATASET_FILE, "{out}/tmp-output.tmp"], "env": {}},
        "greet": {"args": ["--greet", "{out}/greeting.txt"], "env": {}},
    }
    assert "validate" not in run  # the two commands write different files: neither is every command's
    hello = next(m for m in report.items if m.name == "program-hello-ck")
    assert any("customize.py" in n for n in hello.not_carried)
    assert any("run_cmds.piped" in n and "shell" in n for n in hello.not_carried)
    assert any("run_cmds.greet: its own output files (greeting.txt) are not checked" in n for n in hello.not_carried)

    soft = line_of(index, "soft-compiler.gcc")
    assert soft["kind"] == "compiler" and soft["targets"] == ["linux-*", "windows-*"]
    assert soft["detect"] == [{"compiler": "gcc", "languages": ["c", "cxx"], "executable": ["gcc"],
                               "version_args": ["--version"], "version_regex": r"(\d+\.\d+(?:\.\d+)?)"}]
    pkg = line_of(index, "package-lib-ckhello")
    assert pkg["version"] == "1.2" and pkg["ck"]["ldflags"] == ["-lckhello"]
    steps = pkg["install"][0]["steps"]
    assert steps[0]["kind"] == "script" and all("touch" not in line for line in steps[0]["run"])
    data = line_of(index, "dataset-text-ck-0001")
    assert data["install"][0]["steps"][1] == {"kind": "copy", "from": "words.txt", "to": DATASET_FILE}
    # each entry's files are kept beside the index, named by their sha256
    assert data["source"]["urls"][0].startswith("file://") and len(data["source"]["sha256"]) == 64
    assert (index / "ck-files" / "dataset-text-ck-0001.tar").stat().st_size == data["source"]["size"]


def test_imported_lines_match_the_index_schema(ck_repo: tuple[Path, Path], tmp_path: Path) -> None:
    import jsonschema

    schema = json.loads((ROOT / "index" / "schema.json").read_text())
    assert schema == json.loads((ROOT / "tools" / "embedded" / "schema.json").read_text())
    repo, _ = ck_repo
    index = tmp_path / "idx"
    report = import_ck(repo, index)
    for m in report.imported:
        jsonschema.validate(line_of(index, m.name), schema)
    bad = dict(line_of(index, "program-hello-ck"), ck={"uid": "not-a-uid"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@needs_cc
def test_lock_and_run_the_imported_program_with_the_real_compiler(ck_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo, mark = ck_repo
    index = tmp_path / "ck-index"
    r = ckpm_cli("import", "ck", str(repo), "--into", str(index), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "program/broken-json" in r.stdout and "program" in r.stdout
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text(f'[project]\nname = "try-ck"\n\n[[index]]\nname = "ck"\nurl = "{index}"\n')
    r = ckpm_cli("search", "1111111111111111", cwd=proj)  # people find what they know: the CK UID
    assert r.returncode == 0 and "program-hello-ck" in r.stdout, r.stdout + r.stderr
    r = ckpm_cli("add", "program-hello-ck", cwd=proj)
    assert r.returncode == 0, r.stderr
    lock = (proj / "ckpm.lock").read_text()
    for name in ("program-hello-ck", "package-lib-ckhello", "dataset-text-ck-0001", "soft-compiler.gcc"):
        assert f'"{name}"' in lock or f"name = \"{name}\"" in lock, name

    r = ckpm_cli("run", "program-hello-ck", "--cmd", "count", "--input", "dataset-text-ck-0001",
                 "--record", "ck", "--json", cwd=proj)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(r.stdout)["data"]
    assert rec["ok"] and rec["validation"] == []  # the exit status: checked (a failed run fails)
    out = Path(rec["repetitions"][0]["out"])
    assert (out / "tmp-output.tmp").read_text() == "words: 9\n"
    assert rec["config"]["compiler"]["name"] == "soft-compiler.gcc"
    built = {p["name"]: p["action"] for p in rec["stages"]["provision"]["packages"]}
    assert built["package-lib-ckhello"] in ("built", "store") and built["soft-compiler.gcc"] == "host"
    assert "-lckhello" in rec["stages"]["compile"]["command"]
    assert list((proj / ".ckpm" / "experiments" / "ck").glob("*.json"))

    r = ckpm_cli("run", "program-hello-ck", "--cmd", "greet", "--env", "CK_SCALE=2", "--json", cwd=proj)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(r.stdout)["data"]
    assert (Path(rec["repetitions"][0]["out"]) / "greeting.txt").read_text() == "hello from a CK package\n"
    # the other command of the entry was not carried over, and says so
    r = ckpm_cli("run", "program-hello-ck", "--cmd", "piped", cwd=proj)
    assert r.returncode == 1 and "has no command 'piped'" in r.stderr
    assert not mark.exists(), "a CK hook or script ran"


@needs_cc
@needs_git
def test_import_from_a_git_repository_at_a_commit(ck_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo, mark = ck_repo
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "ck"], check=True)
    first = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                           check=True).stdout.strip()
    (repo / "dataset" / "text-ck-0001" / "words.txt").write_text("changed later\n")
    subprocess.run([*git, "-C", str(repo), "commit", "-qam", "later"], check=True)
    bare = tmp_path / "ck-demo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
    settings = Settings(cache_dir=tmp_path / "cache")

    # a git URL: the entries are referenced by commit and sub-folder
    report = import_ck(bare.as_uri(), tmp_path / "by-url", rev=first, settings=settings)
    assert report.rev == first
    line = line_of(tmp_path / "by-url", "dataset-text-ck-0001")
    assert line["source"] == {"git": bare.as_uri(), "rev": first, "subdir": "dataset/text-ck-0001"}
    # the package's sources are the entry's own files at that commit
    assert line_of(tmp_path / "by-url", "package-lib-ckhello")["source"]["rev"] == first

    # a local repository (bare): read at the commit without a clone; files kept beside the index
    report = import_ck(bare, tmp_path / "local", rev=first[:12], settings=settings)
    assert report.rev == first and report.counts()["program"]["imported"] == 1

    # the program from the git-URL index runs on the data set as it was at that commit
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text('[project]\nname = "p"\n\n[dependencies]\nprogram-hello-ck = "*"\n\n'
                                    f'[[index]]\nname = "ck"\nurl = "{tmp_path / "by-url"}"\n')
    out = ckpm.access({"action": "run", "project": str(proj), "component": "program-hello-ck", "command": "count",
                       "cache_dir": str(tmp_path / "cache")})
    assert out["return"] == 0, out
    assert (Path(out["repetitions"][0]["out"]) / "tmp-output.tmp").read_text() == "words: 9\n"
    assert not mark.exists()

    with pytest.raises(CkImportError, match="no commit"):
        import_ck(bare, tmp_path / "x", rev="no-such-branch", settings=settings)


def test_access_action_and_json_envelope(ck_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo, _ = ck_repo
    out = ckpm.access({"action": "import_ck", "src": str(repo), "into": str(tmp_path / "a"),
                       "modules": ["dataset", "soft"]})
    assert out["return"] == 0, out
    assert set(out["counts"]) == {"dataset", "soft"}
    assert {e["component"] for e in out["entries"] if e["imported"]} == {"dataset-text-ck-0001", "soft-compiler.gcc"}
    hello = ckpm.access({"action": "import_ck", "src": str(tmp_path / "nothing-here")})
    assert hello["return"] == 1 and "no such folder" in hello["error"]
    (tmp_path / "not-ck" / "docs").mkdir(parents=True)
    empty = ckpm.access({"action": "import_ck", "src": str(tmp_path / "not-ck"), "into": str(tmp_path / "e")})
    assert empty["return"] == 1 and "no CK entries" in empty["error"] and not (tmp_path / "e").exists()
    r = ckpm_cli("import", "ck", str(repo), "--into", str(tmp_path / "b"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    assert env["ok"] and env["data"]["counts"]["program"] == {"entries": 5, "imported": 1, "skipped": 4}
    skipped = {e["alias"]: e["reason"] for e in env["data"]["entries"] if not e["imported"]}
    assert "fortran-thing" in skipped
    assert any(u["entry"] == "program/broken-json" for u in env["data"]["unreadable"])


def test_hostile_metadata_is_bounded_and_never_escapes(tmp_path: Path) -> None:
    repo = tmp_path / "evil"
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    _write(repo / ".ckr.json", {"data_alias": "evil"})
    # a meta.json over the cap; one nested too deep; a link out of the entry; odd names
    _entry(repo, "dataset", "huge", "aaaaaaaaaaaaaaaa", {"tags": ["dataset"], "pad": "x" * (MAX_META_BYTES + 10)})
    _write(repo / "dataset" / "deep" / ".cm" / "meta.json", "[" * 200 + "]" * 200)
    d = _entry(repo, "dataset", "linked", "bbbbbbbbbbbbbbbb", {"dataset_files": ["secret.txt"], "tags": ["dataset"]})
    os.symlink(outside, d / "secret.txt")
    _entry(repo, "program", "evil-args", "cccccccccccccccc", {
        "source_files": ["../../secret.txt"], "run_cmds": {"x": {"run_time": {"run_cmd_main": "$#BIN_FILE#$"}}}})
    _entry(repo, "program", "evil-cmd", "dddddddddddddddd", {
        "source_files": ["a.c"], "run_cmds": {
            "x": {"run_time": {"run_cmd_main": "$#BIN_FILE#$ {dep.compiler} $(reboot)"}},
            "y": {"run_time": {"run_cmd_main": "/bin/sh -c 'rm -rf /'"}},
            "z": {"run_time": {"run_cmd_main": "$#BIN_FILE#$ $#CK_ENV_LIB_X#$"}}}},
        {"a.c": "int main(void){return 0;}"})
    _entry(repo, "package", "evil-url", "eeeeeeeeeeeeeeee", {
        "customize": {"install_env": {"PACKAGE_URL": "https://x.org/$(curl evil)", "PACKAGE_NAME": "a.tgz",
                                      "PACKAGE_BUILD_TYPE": "cmake"}}, "tags": ["lib"]})
    _entry(repo, "package", "evil-flags", "ffffffffffffffff", {
        "customize": {"install_env": {"PACKAGE_URL": "https://x.org/", "PACKAGE_NAME": "a.tgz",
                                      "PACKAGE_BUILD_TYPE": "cmake",
                                      "PACKAGE_CONFIGURE_FLAGS": "-DX=1 ;rm -rf / $HOME"}}, "tags": ["lib"]})
    report = import_ck(repo, tmp_path / "idx")
    why = {m.entry.where: m.skipped for m in report.items if m.line is None}
    why.update({s.where: s.reason for s in report.unreadable})
    assert "over the cap" in why["dataset/huge"]
    assert "nested deeper" in why["dataset/deep"]
    assert "not a file of the entry" in why["dataset/linked"]  # the link is not one of its files
    linked = next(e for e in read_repo(repo).entries if e.alias == "linked")
    assert linked.files == [] and any("symbolic link" in p for p in linked.problems)
    assert "not a file of the entry" in why["program/evil-args"]
    assert why["program/evil-cmd"].startswith("no run command could be carried over (run_cmds.")
    assert "not an http(s) URL" in why["package/evil-url"]
    flags = line_of(tmp_path / "idx", "package-evil-flags")
    assert flags["install"][0]["steps"] == [{"kind": "cmake", "args": ["-DX=1"]}]
    assert not list((tmp_path / "idx").rglob("secret*"))


def _tar_bz2(files: dict[str, str]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tf:
        for name, text in files.items():
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@needs_cc
def test_a_library_in_the_package_s_own_archive_is_built_in_the_store(tmp_path: Path) -> None:
    """As lib-rtl-polybench: process.sh names the library, the sources and ck-make.sh are in an
    archive of the entry. Read as text and member names, never run; built by ckpm's recipe."""
    mark = tmp_path / "ran.txt"
    repo = tmp_path / "ck"
    _write(repo / ".ckr.json", {"data_alias": "ck"})
    make = 'export CK_SOURCE_FILES=poly.c\nexport CK_INCLUDE_FILE=poly.h\n${CK_CC} -c poly.c\n'
    _entry(repo, "package", "lib-rtl-poly", "abababababababab", {
        "process_script": "process", "customize": {"version": "2012"}, "tags": ["lib", "rtl", "poly"],
        "end_full_path": {"linux": "lib/librtlpoly.a"}}, {
        "process.sh": "export PACKAGE_NAME=lib-rtl-poly\nexport LIB_NAME=librtlpoly\n" + SCRIPT.format(mark=mark),
        "lib-rtl-poly.tar.bz2": _tar_bz2({"src/ck-make.sh": make, "src/poly.c": "int poly(int x){return 3*x;}\n",
                                          "src/poly.h": "int poly(int x);\n"})})
    _entry(repo, "package", "lib-evil-folder", "cdcdcdcdcdcdcdcd", {"process_script": "process", "tags": ["lib"]}, {
        "process.sh": "export LIB_NAME=libevil\n",
        "evil.tar.bz2": _tar_bz2({"x;touch pwned/ck-make.sh": make, "x;touch pwned/poly.c": "int x;\n"})})
    index = tmp_path / "idx"
    report = import_ck(repo, index)
    why = {m.entry.where: m.skipped for m in report.items if m.line is None}
    assert "package/lib-evil-folder" in why
    line = line_of(index, "package-lib-rtl-poly")
    recipe = line["install"][0]
    assert recipe["sources"][0]["urls"][0].endswith("package-lib-rtl-poly--lib-rtl-poly.tar.bz2")
    assert line["ck"]["ldflags"] == ["-lrtlpoly"] and line["version"] == "2012"
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "ckpm.toml").write_text('[project]\nname = "p"\n\n[dependencies]\npackage-lib-rtl-poly = "*"\n'
                                    f'compiler = {{ tags = "compiler,lang-c", kind = "build" }}\n\n'
                                    f'[[index]]\nname = "ck"\nurl = "{index}"\n\n'
                                    f'[[index]]\nname = "default"\nurl = "{ROOT / "index"}"\n')
    out = ckpm.access({"action": "sync", "project": str(proj)})
    assert out["return"] == 0, out
    prefix = Path(next(p["path"] for p in out["packages"] if p["name"] == "package-lib-rtl-poly"))
    assert (prefix / "lib" / "librtlpoly.a").is_file() and (prefix / "include" / "poly.h").is_file()
    assert not mark.exists() and not list(tmp_path.rglob("pwned"))


def test_a_data_set_of_several_files_and_the_commands_that_name_them(tmp_path: Path) -> None:
    from ckpm.ck.layout import CkEntry
    from ckpm.ck.mapping import map_dataset, map_program

    d = tmp_path / "pair"
    for f in ("a.txt", "b.txt"):
        _write(d / f, f)
    data = map_dataset(CkEntry("dataset", "pair", None, d, {"dataset_files": ["a.txt", "b.txt", "gone.txt"],
                                                            "tags": ["dataset", "pair"]}, files=["a.txt", "b.txt"]))
    assert data.line is not None
    assert data.line["install"][0]["steps"] == [{"kind": "copy"}, {"kind": "copy", "from": "a.txt", "to": DATASET_FILE},
                                                {"kind": "copy", "from": "b.txt", "to": DATASET_FILE + "-1"}]
    p = tmp_path / "prog"
    _write(p / "m.c", "int main(void){return 0;}\n")
    meta = {"source_files": ["m.c"], "run_cmds": {"default": {"dataset_tags": ["pair"], "run_time": {
        "run_cmd_main": "$#BIN_FILE#$ $#dataset_path#$$#dataset_filename#$ $#dataset_path#$$#dataset_filename_1#$ "
                        "$#dataset_path#$$#dataset_filename_99#$"}}, "ok": {"dataset_tags": ["pair"], "run_time": {
        "run_cmd_main": "$#BIN_FILE#$ $#dataset_path#$$#dataset_filename#$ "
                        "\"$#dataset_path#$$#dataset_filename_1#$\""}}}}
    prog = map_program(CkEntry("program", "prog", None, p, meta, files=["m.c"]))
    assert prog.line is not None
    assert prog.line["run"]["commands"] == {
        "ok": {"args": ["{input}/" + DATASET_FILE, "{input}/" + DATASET_FILE + "-1"], "env": {}}}
    assert any("dataset_filename_99" in n for n in prog.not_carried)
    # dataset_tags at the program's level (as docs/coming-from-ck.md shows it) serve every command
    top = {"source_files": ["m.c"], "dataset_tags": ["pair"],
           "run_cmds": {"default": {"run_time": {"run_cmd_main": "$#BIN_FILE#$ $#dataset_path#$$#dataset_filename#$"}}}}
    prog = map_program(CkEntry("program", "prog", None, p, top, files=["m.c"]))
    assert prog.line is not None and prog.line["run"]["commands"]["default"]["args"] == ["{input}/" + DATASET_FILE]
    assert {"name": "dataset", "tags": ["pair"]} in prog.line["deps"] or any(
        d.get("tags") == ["pair"] for d in prog.line["deps"]), prog.line["deps"]


def test_aliases_and_uids_as_ck_writes_them(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    _entry(repo, "dataset", "with-alias", "0a0a0a0a0a0a0a0a", {"tags": ["dataset"]}, {"f.txt": "x"})
    # no alias: the folder is the UID; the UID in the alias file wins over info.json's
    _write(repo / "dataset" / "1b1b1b1b1b1b1b1b" / ".cm" / "meta.json", {"tags": ["dataset"]})
    _write(repo / "dataset" / ".cm" / "alias-a-with-alias", "0c0c0c0c0c0c0c0c\n")
    entries = {e.alias: e.uid for e in read_repo(repo).entries}
    assert entries == {"with-alias": "0c0c0c0c0c0c0c0c", "1b1b1b1b1b1b1b1b": "1b1b1b1b1b1b1b1b"}
