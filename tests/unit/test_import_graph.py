"""The import graph, read from the source with `ast` (nothing is imported):

1. a service imports no other service: they talk over gRPC only;
2. nothing a service runs (`services`, `nudgelib`) imports the tooling (`nudgetools`);
3. a pure module imports only pure things, so that a rule can be read and tested alone;
4. no two modules import each other, directly or round a longer circle.

Every `import` statement counts, wherever it is: inside a function, under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# --- the tables to edit ---------------------------------------------------------------------

# Modules that hold rules and nothing else, by package. A module listed here may import only
# the standard library outside IMPURE_STDLIB, THIRD_PARTY_FOR_PURE, generated `nudge.*_pb2`
# message modules (not the `_pb2_grpc` stubs) and other modules listed here.
#
# Left out, and why: ingestion's pressure (reads /proc through os).
PURE: dict[str, set[str]] = {
    "nudgelib": {"buckets", "compare", "drop_tickets", "event_times", "filters", "isolation", "keys", "names", "pagination", "protoconv", "public_clients",
                 "request_checks", "templates", "timezones", "user_tokens", "versions", "violations"},
    "nudgelib.eventlog": {"framing", "grouping", "lanes"},
    "services.decision": {"caps", "catalog", "drops", "eligibility", "explain", "judge", "model", "plan", "preview",
                          "reactions", "references", "selection", "triggers", "validation", "variants", "windows"},
    "services.ingestion": {"keys", "partitions", "validation"},
    "services.delivery": {"days", "model", "stats", "surveys"},
    "console": {"charts", "grpcweb"},
    "services.segmentation": {"aggregates", "catalog", "contexts", "model", "properties", "rule_evaluation",
                              "rule_tree", "rule_validation", "sqlrules"},
}

# Third-party packages a pure module may use: protobuf messages, Liquid templates, and the
# time zone database that zoneinfo reads on machines without one; JWTs and the public keys
# that verify them (user tokens: signatures are computation, not I/O).
THIRD_PARTY_FOR_PURE = frozenset({"google.protobuf", "liquid", "tzdata", "jwt", "cryptography"})

# The standard library a pure module may not import: what does I/O or reads state that is not
# in its arguments. (A module ban cannot see `datetime.now()`; the rules take a `now` or a
# Clock instead. zoneinfo reads static zone files and stays allowed.)
IMPURE_STDLIB = frozenset({
    # network and event loops
    "asyncio", "socket", "ssl", "select", "selectors", "http", "urllib", "ftplib", "poplib",
    "imaplib", "smtplib", "socketserver", "xmlrpc", "wsgiref", "webbrowser",
    # processes, threads, signals
    "subprocess", "signal", "multiprocessing", "threading", "_thread", "concurrent", "queue",
    "sched", "atexit",
    # files, the interpreter and the operating system
    "os", "sys", "io", "pathlib", "shutil", "tempfile", "glob", "fileinput", "mmap", "fcntl",
    "termios", "pty", "tty", "resource", "sqlite3", "dbm", "shelve", "zipfile", "tarfile",
    "importlib", "runpy", "ctypes", "platform", "getpass", "pwd", "grp",
    # logging: a rule returns its reasons, the edges log them
    "logging", "syslog",
    # hidden inputs: the clock, randomness, ambient per-request state. (uuid stays allowed: the
    # rules that create a message mint its id, and nothing they decide depends on it.)
    "time", "random", "secrets", "contextvars",
})

ROOTS = {"services": REPO / "services", "nudgelib": REPO / "libs" / "nudgelib",
         "nudgetools": REPO / "libs" / "nudgetools", "console": REPO / "console"}

# --- reading the graph ----------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # the module imported, fully qualified


@dataclass(frozen=True)
class Module:
    name: str
    where: str  # the path shown in failures
    is_package: bool
    tree: ast.Module

    def imports(self, known: set[str]) -> list[Import]:
        """What this module imports. `from a import b` imports module a.b when that is a module
        (one of `known`, or a generated `_pb2`/`_pb2_grpc`), else module a."""
        package = self.name if self.is_package else self.name.rpartition(".")[0]
        found = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                found += [Import(node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    is_module = sub in known or alias.name.endswith(("_pb2", "_pb2_grpc"))
                    found.append(Import(node.lineno, sub if is_module else base))
        return list(dict.fromkeys(found))  # `from a import b, c` is one import of a


def parse(name: str, source: str, where: str = "<source>", is_package: bool = False) -> Module:
    return Module(name, where, is_package, ast.parse(source, filename=where))


def scan() -> dict[str, Module]:
    modules = {}
    for root_name, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = [root_name, *path.relative_to(root).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            modules[name] = parse(name, path.read_text(), str(path.relative_to(REPO)), is_package)
    return modules


def graph(modules: dict[str, Module]) -> dict[str, list[Import]]:
    known = set(modules)
    return {name: m.imports(known) for name, m in modules.items()}


def within(target: str, package: str) -> bool:
    return target == package or target.startswith(package + ".")


def describe(modules: dict[str, Module], name: str, imp: Import, why: str = "") -> str:
    return f"{modules[name].where}:{imp.line} ({name}) imports {imp.target}" + (f": {why}" if why else "")


# --- the rules ------------------------------------------------------------------------------


def cross_service_imports(modules: dict[str, Module]) -> list[str]:
    found = []
    for name, imports in graph(modules).items():
        parts = name.split(".")
        if parts[0] != "services" or len(parts) < 2:
            continue
        own = f"services.{parts[1]}"
        for imp in imports:
            if within(imp.target, "services") and imp.target != "services" and not within(imp.target, own):
                found.append(describe(modules, name, imp, "services talk over gRPC, never by import"))
    return found


def tooling_imports(modules: dict[str, Module]) -> list[str]:
    found = []
    for name, imports in graph(modules).items():
        if not (within(name, "services") or within(name, "nudgelib")):
            continue
        for imp in imports:
            if within(imp.target, "nudgetools") or within(imp.target, "console"):
                found.append(describe(modules, name, imp, "the services and nudgelib never import the tooling"))
    return found


def pure_modules(pure: dict[str, set[str]]) -> set[str]:
    """The modules listed, and the packages above them: importing a module runs their
    `__init__` first, so they are held to the same rule."""
    listed = {f"{package}.{m}" for package, names in pure.items() for m in names}
    parents = {".".join(n.split(".")[:i]) for n in listed for i in range(1, n.count(".") + 1)}
    return listed | parents


def impurity(target: str, pure: set[str]) -> str | None:
    """Why a pure module may not import `target`, or None if it may."""
    top = target.split(".")[0]
    if target in pure:
        return None
    if top in sys.stdlib_module_names:
        return f"{top} does I/O or reads hidden state (IMPURE_STDLIB)" if top in IMPURE_STDLIB else None
    if any(within(target, allowed) for allowed in THIRD_PARTY_FOR_PURE):
        return None
    if top == "nudge":
        if target.endswith("_pb2"):
            return None
        if target.endswith("_pb2_grpc"):
            return "gRPC stubs are I/O; a pure module uses the messages (_pb2) only"
    if top in ("services", "nudgelib", "nudgetools", "nudge"):
        return "not a pure module (add it to PURE only if it is one)"
    return "a third-party package not in THIRD_PARTY_FOR_PURE"


def impure_imports(modules: dict[str, Module], pure: dict[str, set[str]]) -> list[str]:
    names = pure_modules(pure)
    imports = graph(modules)
    found = [f"{n} is listed in PURE but there is no such module" for n in sorted(names) if n not in modules]
    for name in sorted(names & set(modules)):
        for imp in imports[name]:
            why = impurity(imp.target, names)
            if why:
                found.append(describe(modules, name, imp, why))
    return found


def import_cycles(modules: dict[str, Module]) -> list[str]:
    """Every circle of imports among the scanned modules, each once."""
    edges = {name: sorted({i.target for i in imports if i.target in modules and i.target != name})
             for name, imports in graph(modules).items()}
    cycles, done = [], set()

    def visit(name: str, path: list[str]) -> None:
        for nxt in edges[name]:
            if nxt in path:
                cycle = path[path.index(nxt):]
                start = cycle.index(min(cycle))
                key = tuple(cycle[start:] + cycle[:start])
                if key not in cycles:
                    cycles.append(key)
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(name)

    for name in sorted(edges):
        if name not in done:
            visit(name, [name])
    return [" -> ".join((*c, c[0])) for c in cycles]


# --- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return scan()


def test_the_scan_finds_every_package(modules):
    # A scan of nothing would pass every rule below.
    counts = {root: sum(within(n, root) for n in modules) for root in ROOTS}
    assert counts["services"] >= 40 and counts["nudgelib"] >= 15 and counts["nudgetools"] >= 7, counts
    assert {"services.decision.caps", "nudgelib.server", "nudgetools.cli"} <= set(modules)


def test_no_service_imports_another(modules):
    found = cross_service_imports(modules)
    assert not found, "\n".join(found)


def test_no_service_or_nudgelib_module_imports_the_tooling(modules):
    found = tooling_imports(modules)
    assert not found, "\n".join(found)


def test_pure_modules_import_only_pure_modules(modules):
    found = impure_imports(modules, PURE)
    assert not found, "\n".join(found)


def test_no_import_cycles(modules):
    found = import_cycles(modules)
    assert not found, "import cycles:\n" + "\n".join(found)


# --- the checker checks: each rule catches a violation in a synthetic module -----------------


def synthetic(**sources: str) -> dict[str, Module]:
    return {name: parse(name, source, f"<{name}>", is_package=any(o.startswith(name + ".") for o in sources))
            for name, source in sources.items()}


def test_the_checker_catches_a_service_importing_another():
    found = cross_service_imports(synthetic(**{
        "services.decision.rules": "from services.delivery import store\nfrom services.decision import caps\n",
        "services.decision.caps": "",
        "services.delivery.store": "",
    }))
    assert found == ["<services.decision.rules>:1 (services.decision.rules) imports services.delivery.store:"
                     " services talk over gRPC, never by import"]


def test_the_checker_catches_nudgelib_importing_the_tooling():
    found = tooling_imports(synthetic(**{
        "nudgelib.server": "def f():\n    import nudgetools.cluster\n",
        "services.ingestion.server": "from nudgetools.embedded import start\n",
    }))
    assert [f.split(" imports ")[1].split(":")[0] for f in found] == [
        "nudgetools.cluster", "nudgetools.embedded"]


def test_the_checker_catches_an_impure_import_in_a_pure_module():
    modules = synthetic(**{
        "services.decision.judge": (
            "from __future__ import annotations\nimport hashlib\nfrom datetime import time\n"
            "from google.protobuf import struct_pb2\nfrom nudge.decision.v1 import decision_service_pb2 as pb\n"
            "from services.decision import caps\nfrom liquid import Environment\n"
            "import asyncio\nfrom services.decision.store import Row\n"
            "from nudge.decision.v1 import decision_service_pb2_grpc\nimport asyncpg\n"
            "from . import cache\n"),
        "services.decision.caps": "import os.path\n",
        "services.decision.store": "",
        "services.decision.cache": "",
        "services.decision": "",
        "services": "",
    })
    found = impure_imports(modules, {"services.decision": {"judge", "caps", "gone"}})
    assert [f.split(" imports ")[-1].split(":")[0] for f in found] == [
        "services.decision.gone is listed in PURE but there is no such module",
        "os.path",
        "asyncio", "services.decision.store", "nudge.decision.v1.decision_service_pb2_grpc", "asyncpg",
        "services.decision.cache",
    ]


def test_the_checker_catches_a_cycle():
    found = import_cycles(synthetic(**{
        "nudgetools.cli": "def run():\n    from nudgetools.local import run_local\n",
        "nudgetools.local": "from nudgetools import database\nfrom nudgetools.cli import data_dir\n",
        "nudgetools.database": "",
    }))
    assert found == ["nudgetools.cli -> nudgetools.local -> nudgetools.cli"]
