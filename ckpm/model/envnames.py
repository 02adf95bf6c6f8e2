"""Environment variables that data from outside may not set.

A recipe's ``env`` (``ckpm/model/recipe_checks.py``), a program's ``[run]`` ``env`` and those of its
commands (``ckpm/model/program.py``), and what ``ckpm import ck`` carries over
(``ckpm/ck/mapping.py``) share this one list: variables ckpm sets itself, and variables that
change how every program runs — the dynamic loader's (``LD_*``, ``DYLD_*``, ``GCONV_PATH``),
interpreters' start-up hooks (``PYTHON*``, ``NODE_OPTIONS``, ``PERL5OPT``, ``RUBYOPT``,
``JAVA_TOOL_OPTIONS``…), shell start-up files (``BASH_ENV``, ``ENV``), and tools' command hooks
(``GIT_*``, ``PIP_*``). Setting one would run code the data did not show.
"""
from __future__ import annotations

#: names that may not be set
RESERVED_ENV = frozenset({
    # ckpm sets these for builds and runs
    "PATH", "HOME", "TMPDIR", "TMP", "TEMP", "PREFIX", "DESTDIR", "LANG", "LANGUAGE", "SHELL", "PWD", "OLDPWD",
    "CC", "CXX", "AR", "RANLIB", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
    # shells: start-up files, field splitting, traces and prompts that run commands
    "ENV", "BASH_ENV", "IFS", "CDPATH", "PS4", "PROMPT_COMMAND", "SHELLOPTS", "BASHOPTS", "GLOBIGNORE",
    # the C library and the loader
    "GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH", "HOSTALIASES", "RESOLV_HOST_CONF", "RES_OPTIONS",
    "LOCALDOMAIN", "MALLOC_CHECK_", "MALLOC_TRACE", "MALLOC_PERTURB_",
    # interpreters' and runtimes' start-up hooks and module paths
    "NODE_OPTIONS", "NODE_PATH", "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYOPT", "RUBYLIB",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "LUA_INIT", "LUA_PATH", "LUA_CPATH",
    "TCLLIBPATH", "R_PROFILE", "R_PROFILE_USER", "R_ENVIRON", "R_ENVIRON_USER", "OPENSSL_CONF", "OPENSSL_ENGINES",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy",
})
#: prefixes of names that may not be set
RESERVED_ENV_PREFIXES = ("CKPM_", "LD_", "DYLD_", "PYTHON", "PIP_", "LC_", "GIT_", "BASH_FUNC_", "VIRTUAL_ENV",
                         "NPM_CONFIG_", "npm_config_")


def reserved_env(name: str) -> bool:
    """May data from outside not set the variable ``name``?"""
    return name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIXES)
