"""Layering rules, enforced by static analysis (``ast``) of the project's own packages."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "flows", "services", "storage", "admin_web", "locales")
EXCLUDED = ("storage/migrations/versions/",)
# package -> the other project packages it may import (itself is always allowed)
ALLOWED: dict[str, set[str]] = {
    "locales": set(),
    "storage": {"locales"},
    "services": {"storage", "locales"},
    "flows": {"services", "storage", "locales"},
    "admin_web": {"services", "storage", "locales"},
    "bot": set(PACKAGES),
}
# package -> modules of a package it may import that it still may not import: a door reads
# and writes through services/, never through the repositories (#27)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "flows": ("storage.repo",),
    "admin_web": ("storage.repo",),
}
SQL_NAMES = {
    "select", "insert", "update", "delete", "text", "func", "and_", "or_", "not_", "literal",
    "literal_column", "bindparam", "case", "exists", "union", "lambda_stmt", "Table", "Column",
    "sql", "orm", "dialects",
}  # fmt: skip
SQL_MODULES = ("sqlalchemy.dialects", "sqlalchemy.sql", "sqlalchemy.orm")
MAX_LINES = 500
# code that must not be written twice: (one side, the other) by path prefix; a block of
# REPEAT_LINES lines (blank lines, comments and imports aside) found on both sides fails
TWINS = (
    (("admin_web/panel/",), ("admin_web/jastiper/",)),  # the two panels: one shell
    (("services/admins.py",), ("services/jastiper_web.py",)),  # their sessions: one rule
)
REPEAT_LINES = 6
MUTATORS = {"update", "setdefault", "append"}
STATUS_ENUM = "OrderStatus"
STATUS_GROUP_HOMES = ("storage/models.py", "services/")

Sources = Mapping[str, tuple[str, str]]  # module name -> (path relative to ROOT, source text)


def load_project(root: Path = ROOT) -> dict[str, tuple[str, str]]:
    """Every checked module of the project, keyed by its dotted name."""
    sources: dict[str, tuple[str, str]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(EXCLUDED):
                continue
            parts = rel.removesuffix(".py").split("/")
            if parts[-1] == "__init__":
                parts.pop()
            sources[".".join(parts)] = (rel, path.read_text(encoding="utf-8"))
    return sources


def _resolve_base(module: str, path: str, node: ast.ImportFrom) -> str:
    """Absolute module named by ``from <node.module> import ...`` (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def iter_imports(
    module: str, path: str, tree: ast.AST, known: Mapping[str, object]
) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import anywhere in the file; ``from pkg import name``
    gives ``pkg.name`` when that is a known module, else ``pkg``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_base(module, path, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield node.lineno, sub if sub in known else base


def _trees(sources: Sources) -> dict[str, ast.Module]:
    return {name: ast.parse(src, filename=path) for name, (path, src) in sources.items()}


def check_layers(sources: Sources) -> list[str]:
    """Rule 1: imports between top-level packages follow ``ALLOWED``."""
    problems = []
    for name, tree in _trees(sources).items():
        path, own = sources[name][0], name.split(".")[0]
        for line, target in iter_imports(name, path, tree, sources):
            top = target.split(".")[0]
            if top in PACKAGES and top != own and top not in ALLOWED[own]:
                problems.append(f"{path}:{line} imports {target} ({own} may not import {top})")
    return list(dict.fromkeys(problems))


def check_forbidden(sources: Sources) -> list[str]:
    """Rule 1b: no package imports a module ``FORBIDDEN`` keeps from it (or one inside)."""
    problems = []
    for name, tree in _trees(sources).items():
        path, own = sources[name][0], name.split(".")[0]
        for line, target in iter_imports(name, path, tree, sources):
            for banned in FORBIDDEN.get(own, ()):
                if target == banned or target.startswith(f"{banned}."):
                    problems.append(
                        f"{path}:{line} imports {target} ({own} may not import {banned})"
                    )
    return list(dict.fromkeys(problems))


def import_graph(sources: Sources) -> dict[str, set[str]]:
    """Module -> project modules it imports (longest known prefix of each imported name)."""
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, tree in _trees(sources).items():
        for _, target in iter_imports(name, sources[name][0], tree, sources):
            while target and target not in sources:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns every component (sorted members)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    work: list[tuple[str, Iterator[str]]] = []
    components: list[list[str]] = []

    def push(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        work.append((node, iter(sorted(graph.get(node, ())))))

    for start in sorted(graph):
        if start not in index:
            push(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    cut = stack.index(node)
                    components.append(sorted(stack[cut:]))
                    del stack[cut:]
            elif child not in index:
                push(child)
            elif child in stack:
                low[node] = min(low[node], index[child])
    return components


def check_cycles(sources: Sources) -> list[str]:
    """Rule 2: no strongly connected component of more than one module."""
    cycles = [c for c in strongly_connected(import_graph(sources)) if len(c) > 1]
    return [f"import cycle among {len(c)} modules: {', '.join(c)}" for c in sorted(cycles)]


def check_sql(sources: Sources) -> list[str]:
    """Rule 3: outside storage, no SQL builders and no raw SQL strings to ``.execute``."""
    problems = []
    for name, tree in _trees(sources).items():
        path = sources[name][0]
        if name.split(".")[0] == "storage":
            continue
        for node in ast.walk(tree):
            bad: list[str] = []
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                mod, names = node.module, [a.name for a in node.names]
                if mod == "sqlalchemy":
                    bad = [f"sqlalchemy.{n}" for n in names if n in SQL_NAMES or n == "*"]
                elif mod.startswith(SQL_MODULES):
                    bad = [f"{mod}.{n}" for n in names]
                elif mod == "sqlalchemy.ext.asyncio":
                    bad = [f"{mod}.{n}" for n in names if n != "AsyncSession"]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "execute"
                and node.args
            ):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    bad = ["raw SQL string passed to .execute()"]
                elif isinstance(arg, ast.Call) and getattr(arg.func, "id", None) == "text":
                    bad = ["text() SQL passed to .execute()"]
            problems += [
                f"{path}:{getattr(node, 'lineno', 0)} {b} (SQL belongs in storage)" for b in bad
            ]
    return problems


def check_sizes(sources: Sources) -> list[str]:
    """Rule 4: modules under flows/ and services/ stay at or below ``MAX_LINES`` lines."""
    return [
        f"{path}: {n} lines (max {MAX_LINES})"
        for path, src in sources.values()
        if path.startswith(("flows/", "services/")) and (n := len(src.splitlines())) > MAX_LINES
    ]


def _module_level(node: ast.AST) -> Iterator[ast.AST]:
    """Nodes executed at import time: everything except function and lambda bodies."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _module_level(child)


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def check_import_time_registration(sources: Sources) -> list[str]:
    """Rule 5: no module-level writes into a table that belongs to an imported module."""
    problems = []
    for name, tree in _trees(sources).items():
        nodes = list(_module_level(tree))
        imported = {  # names an import binds (from-import names never contain a dot)
            a.asname or a.name.partition(".")[0]
            for n in nodes
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        }
        for node in nodes:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS
            ):
                targets = [node.func]
            for target in targets:
                root = _root_name(target)
                if isinstance(target, ast.Attribute | ast.Subscript) and root in imported:
                    where = f"{sources[name][0]}:{getattr(node, 'lineno', 0)}"
                    problems.append(f"{where} fills {ast.unparse(target)} of imported {root}")
    return problems


def _status_member(node: ast.expr, enum_names: set[str]) -> str | None:
    """``OrderStatus.PAID`` / ``S.PAID`` (``.value`` or not) → ``PAID``; else None."""
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in enum_names
        and node.attr.isupper()
    ):
        return node.attr
    return None


def status_groups(sources: Sources) -> list[tuple[str, int, frozenset[str]]]:
    """(path, line, statuses) of every literal tuple, list or set naming two or more order
    statuses (``OrderStatus`` or a module's alias of it), ``storage/models.py`` first."""
    found = []
    trees = _trees(sources)
    for name in sorted(trees, key=lambda n: sources[n][0] != "storage/models.py"):
        tree = trees[name]
        enum_names = {STATUS_ENUM} | {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign) and getattr(node.value, "id", None) == STATUS_ENUM
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                members = [_status_member(e, enum_names) for e in node.elts]
                if len(members) >= 2 and all(members):
                    found.append((sources[name][0], node.lineno, frozenset(map(str, members))))
    return found


def check_status_groups(sources: Sources) -> list[str]:
    """Rule 6: a group of order statuses is spelled out once: in ``storage/models.py``
    (``OrderGroup``) or, for a rule's own set, in ``services/``; never in a door, a
    repository or the runtime, and no two spell the same statuses."""
    problems: list[str] = []
    seen: dict[frozenset[str], str] = {}
    for path, line, members in status_groups(sources):
        where = f"{path}:{line}"
        if not path.startswith(STATUS_GROUP_HOMES):
            problems.append(f"{where} spells a group of order statuses (use OrderGroup)")
        elif members in seen:
            problems.append(f"{where} spells the same statuses as {seen[members]}")
        seen.setdefault(members, where)
    return problems


def _blocks(path: str, src: str) -> dict[tuple[str, ...], str]:
    """Every run of :data:`REPEAT_LINES` code lines of a module -> where it starts."""
    lines = [
        (n, text.strip())
        for n, text in enumerate(src.splitlines(), 1)
        if text.strip() and not text.strip().startswith(("#", "from ", "import "))
    ]
    return {
        tuple(t for _n, t in lines[i : i + REPEAT_LINES]): f"{path}:{lines[i][0]}"
        for i in range(len(lines) - REPEAT_LINES + 1)
    }


def check_twins(sources: Sources) -> list[str]:
    """Rule 7: no block repeated between two places that share one implementation."""
    problems = []
    for left, right in TWINS:
        seen: dict[tuple[str, ...], str] = {}
        for path, src in sources.values():
            if path.startswith(left):
                seen.update(_blocks(path, src))
        for path, src in sources.values():
            if path.startswith(right):
                for block, where in _blocks(path, src).items():
                    if block in seen and not all(line in ")]}" for line in block):
                        problems.append(f"{where} repeats {seen[block]}: {block[0]!r} …")
    return problems


def check_session_listeners(sources: Sources) -> list[str]:
    """Rule 8: no SQLAlchemy event listener on a session class or sessionmaker: what a
    transaction writes at its end is its unit of work's, written by
    ``Database.transaction`` (``storage/uow.py``), not hidden machinery for the whole
    process."""
    problems = []
    for name, tree in _trees(sources).items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called not in ("listen", "listens_for"):
                continue
            target = ast.unparse(node.args[0])
            if target.split(".")[-1].lower().endswith(("session", "sessionmaker")):
                where = f"{sources[name][0]}:{node.lineno}"
                problems.append(f"{where} listens to {target} (stage on the unit of work)")
    return problems


def _report(problems: list[str]) -> str:
    return f"{len(problems)} violation(s):\n" + "\n".join(problems)


def test_package_layers() -> None:
    """Protects the layer order: storage < services < flows/admin_web < bot; locales for all."""
    problems = check_layers(load_project())
    assert not problems, _report(problems)


def test_flows_do_not_import_the_repositories() -> None:
    """Protects services/ as the chat flows' one way to the data: a flow calls a service,
    never a repository of storage/repo/ (storage.models types are fine)."""
    problems = [p for p in check_forbidden(load_project()) if p.startswith("flows/")]
    assert not problems, _report(problems)


def test_the_web_does_not_import_the_repositories() -> None:
    """Protects services/ as the web's one way to the data: a page (admin panel, jastiper
    panel, public pages, the shell) calls a service, never a repository of storage/repo/
    (storage.models types are fine)."""
    problems = [p for p in check_forbidden(load_project()) if p.startswith("admin_web/")]
    assert not problems, _report(problems)


def test_no_import_cycles() -> None:
    """Protects against circular imports between the project's modules."""
    problems = check_cycles(load_project())
    assert not problems, _report(problems)


def test_no_sql_outside_storage() -> None:
    """Protects storage as the only place that builds or runs SQL."""
    problems = check_sql(load_project())
    assert not problems, _report(problems)


def test_module_size() -> None:
    """Protects flows/ and services/ from growing god-modules."""
    problems = check_sizes(load_project())
    assert not problems, _report(problems)


def test_no_import_time_registration() -> None:
    """Protects modules from filling another module's table as an import side effect."""
    problems = check_import_time_registration(load_project())
    assert not problems, _report(problems)


def test_no_session_listeners() -> None:
    """Protects the explicit unit of work from process-wide session listeners."""
    problems = check_session_listeners(load_project())
    assert not problems, _report(problems)


def test_session_listener_checker_catches_one() -> None:
    fake = {
        "storage.a": (
            "storage/a.py",
            "from sqlalchemy import event\nfrom sqlalchemy.orm import Session\n"
            "@event.listens_for(Session, 'before_commit')\ndef f(s): ...\n"
            "event.listen(engine.sync_engine, 'connect', f)\n",
        ),
    }
    assert check_session_listeners(fake) == [
        "storage/a.py:3 listens to Session (stage on the unit of work)"
    ]


def test_order_status_groups_are_defined_once() -> None:
    """Protects the named groups of order statuses from being spelled again by a door."""
    problems = check_status_groups(load_project())
    assert not problems, _report(problems)


def test_the_two_panels_share_their_code() -> None:
    """Protects the web shell: the admin panel and the jastiper panel (and their session
    services) do not grow a second copy of the same code."""
    problems = check_twins(load_project())
    assert not problems, _report(problems)


def test_checkers_catch_known_violations() -> None:
    """Protects the checkers themselves from silently passing."""
    fake: dict[str, tuple[str, str]] = {
        "storage": ("storage/__init__.py", ""),
        "storage.repo": ("storage/repo.py", "def f():\n    from flows.shop import x\n"),
        "flows": ("flows/__init__.py", ""),
        "flows.shop": ("flows/shop.py", "from . import menu\nx = 1\n"),
        "flows.menu": ("flows/menu.py", "from flows import shop\nshop.T['k'] = 1\n"),
        "bot": ("bot/__init__.py", "from sqlalchemy import select\n"),
    }
    assert check_layers(fake) == [
        "storage/repo.py:2 imports flows.shop (storage may not import flows)"
    ]
    assert check_cycles(fake) == ["import cycle among 2 modules: flows.menu, flows.shop"]
    repos: dict[str, tuple[str, str]] = {
        "storage.repo": ("storage/repo/__init__.py", ""),
        "storage.repo.orders": ("storage/repo/orders.py", ""),
        "flows.a": ("flows/a.py", "from storage.repo import orders\nfrom storage import models\n"),
        "flows.b": ("flows/b.py", "def f():\n    import storage.repo.orders\n"),
        "flows.c": ("flows/c.py", "from storage.repo.orders import Order\n"),
        "services.d": ("services/d.py", "from storage.repo import orders\n"),
    }
    assert check_forbidden(repos) == [
        "flows/a.py:1 imports storage.repo.orders (flows may not import storage.repo)",
        "flows/b.py:2 imports storage.repo.orders (flows may not import storage.repo)",
        "flows/c.py:1 imports storage.repo.orders (flows may not import storage.repo)",
    ]
    assert check_sql(fake) == ["bot/__init__.py:1 sqlalchemy.select (SQL belongs in storage)"]
    assert check_import_time_registration(fake) == [
        "flows/menu.py:2 fills shop.T['k'] of imported shop"
    ]
    groups: dict[str, tuple[str, str]] = {
        "services.a": ("services/a.py", "S = OrderStatus\nX = (S.PAID.value, S.DONE)\n"),
        "services.b": ("services/b.py", "Y = {OrderStatus.DONE, OrderStatus.PAID}\n"),
        "flows.c": ("flows/c.py", "f((OrderStatus.PAID, OrderStatus.BOUGHT))\n"),
        "flows.d": ("flows/d.py", "S = State\nT = (S.PAID, S.DONE)\n"),  # not orders
    }
    assert check_status_groups(groups) == [
        "services/b.py:1 spells the same statuses as services/a.py:2",
        "flows/c.py:1 spells a group of order statuses (use OrderGroup)",
    ]
    doors: dict[str, tuple[str, str]] = {
        "storage.repo": ("storage/repo/__init__.py", ""),
        "storage.repo.trips": ("storage/repo/trips.py", ""),
        "admin_web.a": ("admin_web/a.py", "from storage.repo import trips\n"),
        "admin_web.b": ("admin_web/b.py", "def f():\n    from storage import repo\n"),
        "admin_web.c": ("admin_web/c.py", "from storage.models import Trip\n"),
        "services.d": ("services/d.py", "from storage.repo import trips\n"),
    }
    assert check_forbidden(doors) == [
        "admin_web/a.py:1 imports storage.repo.trips (admin_web may not import storage.repo)",
        "admin_web/b.py:2 imports storage.repo (admin_web may not import storage.repo)",
    ]
    body = "".join(f"    x{n} = {n}\n" for n in range(REPEAT_LINES))
    twins = {
        "admin_web.panel.a": ("admin_web/panel/a.py", f"def f():\n{body}"),
        "admin_web.jastiper.b": ("admin_web/jastiper/b.py", f"# b\ndef g():\n{body}"),
    }
    assert check_twins(twins) == [
        "admin_web/jastiper/b.py:3 repeats admin_web/panel/a.py:2: 'x0 = 0' …"
    ]


def check_test_imports(root: Path = ROOT) -> list[str]:
    """Test modules that import from another test module (helpers belong in a helper
    module such as ``tests/journeys.py``, so running one test file never collects
    another's tests and a helper has one home)."""
    problems = []
    for path in sorted((root / "tests").rglob("test_*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in sorted(ast.walk(tree), key=lambda node: getattr(node, "lineno", 0)):
            if isinstance(node, ast.ImportFrom):
                base = "tests." * node.level + (node.module or "")
                names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            ours = [name for name in names if name.startswith("tests.")]
            if any(name.rpartition(".")[2].startswith("test_") for name in ours):
                problems.append(f"{rel}:{node.lineno} imports from a test module")
    return problems


def test_test_modules_import_helpers_not_other_tests() -> None:
    """Protects the shared test helpers' one home: no test module imports another's."""
    problems = check_test_imports()
    assert not problems, _report(problems)


def test_test_import_checker_catches_an_import_of_a_test_module(tmp_path: Path) -> None:
    """Protects the checker above from silently passing."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text(
        "from tests.journeys import joined\n"
        "from tests.test_b import helper\n"
        "def f():\n    from tests import test_c\n"
        "from aiohttp.test_utils import TestClient\n"
        "from .test_d import x\n"
    )
    assert check_test_imports(tmp_path) == [
        "tests/test_a.py:2 imports from a test module",
        "tests/test_a.py:4 imports from a test module",
        "tests/test_a.py:6 imports from a test module",
    ]


def layout_table(readme: str) -> dict[str, str]:
    """The README's layout table: folder (``bot/``) -> what the row says is there."""
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            for folder in cells[0].replace("`", "").split(","):
                rows[folder.strip()] = cells[1]
    return rows


def check_layout(root: Path = ROOT) -> list[str]:
    """Folders and services the README's layout table does not name: every top-level
    folder of the code base, every module in ``services/``."""
    rows = layout_table((root / "README.md").read_text(encoding="utf-8"))
    folders = {
        path.name
        for path in root.iterdir()
        if path.is_dir()
        and not path.name.startswith((".", "_"))
        and not path.name.endswith(".egg-info")
        and path.name not in ("var", "node_modules", "build", "dist")
    }
    named = {folder.rstrip("/") for folder in rows}
    problems = [f"README layout: no row for {name}/" for name in sorted(folders - named)]
    services = rows.get("services/", "")
    for path in sorted((root / "services").glob("*.py")):
        if path.name != "__init__.py" and f"`{path.name}`" not in services:
            problems.append(f"README layout: services/ row does not name {path.name}")
    return problems


def test_readme_layout_names_every_folder_and_service() -> None:
    """Protects the README's map of the code from going stale: a new folder or service
    gets its line."""
    problems = check_layout()
    assert not problems, _report(problems)


def test_layout_checker_catches_a_missing_folder_and_service(tmp_path: Path) -> None:
    """Protects the layout checker from silently passing."""
    for folder in ("bot", "services", "extra", ".git"):
        (tmp_path / folder).mkdir()
    (tmp_path / "services" / "trips.py").write_text("")
    (tmp_path / "services" / "unlisted.py").write_text("")
    (tmp_path / "README.md").write_text(
        "## Layout\n\n| folder | what |\n|---|---|\n"
        "| `bot/` | the runtime |\n| `services/` | `trips.py` |\n\n## Next\n"
    )
    assert check_layout(tmp_path) == [
        "README layout: no row for extra/",
        "README layout: services/ row does not name unlisted.py",
    ]
