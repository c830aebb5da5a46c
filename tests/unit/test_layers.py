"""The rooms of the package and the arrows between them (DESIGN.md, "the target layout").

Read from the source with ``ast``: every import at run time (``TYPE_CHECKING`` blocks are
type hints only), with the package ``__init__``s it runs on the way, must point to a room of
a lower rank or stay inside its own room; the API must not reach its forbidden rooms however
indirectly; no two modules may import each other, however indirectly; no relative imports.
A new module lands in a room by its path; a new arrow upward fails here with the offending
import named.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ari_offload"

# Lower ranks never import higher ones. Same rank: no arrows between different rooms.
RANKS: dict[str, int] = {
    "errors": 0, "__init__": 0, "tasks": 0,
    "audio": 1, "dialpattern": 1, "schema": 1, "turn_fields": 1, "action_fields": 2,
    "config": 2, "policy": 2, "policy_file": 3,
    "media": 4, "speech": 4, "agent": 4,
    "ari": 5,
    "voice": 6,
    "flows": 7,
    "store": 8,
    "observe": 9, "quotas": 9, "retention": 9, "cluster": 9,
    "api": 10,
    "sdk": 11,
    "telephony": 12, "service": 12, "app": 13, "doctor": 13, "cli": 14,
}  # fmt: skip
# The API answers HTTP from the store; it never reaches into calls or engines directly.
FORBIDDEN = {"api": {"ari", "voice", "media", "speech", "telephony"}}
# The SDK is a thin client of the REST API: it shares the declarations (errors, the schema
# language, flow action shapes, turn fields) and nothing of the server's machinery.
SDK_CLIENT_MAY_REACH = (
    "__init__",
    "errors",
    "schema",
    "action_fields",
    "turn_fields",
    "flows.__init__",
    "flows.model",
    "flows.actions",
    "sdk.records",
    "sdk.resources",
    "sdk.calls",
    "sdk.events",  # the event stream: aiohttp and the standard library only
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts) or "__init__"


def runtime_imports(path: Path, known: set[str]) -> set[str]:
    """The modules that importing ``path`` runs, each package ``__init__`` on the way too."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # Relative imports would hide arrows from the names read here: none allowed.
            assert node.level == 0, f"{path.name}:{node.lineno}: relative import"
            assert node.module is not None
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            if not all(_is_module(name, known) for name in names):
                names.append(node.module)  # names from the module itself, not submodules
        for name in names:
            if name == "ari_offload" or name.startswith("ari_offload."):
                found |= _loaded_by(name.removeprefix("ari_offload").lstrip("."), known)
    return found


def _loaded_by(inner: str, known: set[str]) -> set[str]:
    """``a.b.c`` runs ``a/__init__``, ``a/b/__init__``, then ``a/b/c`` (or its ``__init__``)."""
    parts = inner.removesuffix(".__init__").split(".") if inner else []
    loaded = {"__init__"}
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if f"{name}.__init__" in known:
            loaded.add(f"{name}.__init__")
        elif name in known:
            loaded.add(name)
    return loaded


def _is_module(name: str, known: set[str]) -> bool:
    inner = name.removeprefix("ari_offload.")
    return inner in known or f"{inner}.__init__" in known


def _own_packages(module: str) -> set[str]:
    """The package ``__init__``s already running when ``module`` is imported."""
    parts = module.split(".")[:-1]
    return {"__init__", *(".".join(parts[:i]) + ".__init__" for i in range(1, len(parts) + 1))}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {
        name: runtime_imports(path, known) - {name} - _own_packages(name)
        for name, path in paths.items()
    }


def reached_from(edges: dict[str, set[str]], start: str) -> set[str]:
    reached: set[str] = set()
    todo = [start]
    while todo:
        for target in edges[todo.pop()] - reached:
            reached.add(target)
            todo.append(target)
    return reached


def room(module: str) -> str:
    return module.split(".")[0]


def test_the_graph_is_read_whole() -> None:
    edges = graph()
    assert len(edges) > 80
    assert "media.port" in edges["voice.conversation"]
    assert "flows.actions.__init__" in edges["store.resources"]  # via flows.actions.base
    assert "media.__init__" in edges["voice.conversation"]  # the package runs first


def test_every_room_has_a_rank() -> None:
    rooms = {room(m) for m in graph()}
    assert rooms <= RANKS.keys(), f"give these rooms a rank: {sorted(rooms - RANKS.keys())}"


def test_no_arrow_points_upward() -> None:
    wrong = []
    for module, imports in graph().items():
        for target in imports:
            a, b = room(module), room(target)
            if a == b or b == "__init__":
                continue
            if RANKS[b] >= RANKS[a]:
                wrong.append(f"{module} (rank {RANKS[a]}) imports {target} (rank {RANKS[b]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_forbidden_rooms_are_not_reached_even_indirectly() -> None:
    edges = graph()
    wrong = [
        f"{module} loads {target}"
        for module in edges
        for target in reached_from(edges, module)
        if room(target) in FORBIDDEN.get(room(module), set())
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_the_sdk_client_stands_alone() -> None:
    reached = reached_from(graph(), "sdk.client")
    machinery = {m for m in reached if not m.startswith(SDK_CLIENT_MAY_REACH)}
    assert not machinery, f"importing the SDK client loads {sorted(machinery)}"


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state[nxt] == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif state[nxt] == 0:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if state[node] == 0:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
