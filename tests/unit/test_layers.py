"""The rooms of the package and the arrows between them (DESIGN.md, "the target layout").

Read from the source with ``ast``: every import at run time (``TYPE_CHECKING`` blocks are
type hints only) must point to a room of a lower rank or stay inside its own room, and no
two modules may import each other, however indirectly. A new module lands in a room by its
path; a new arrow upward fails here with the offending import named.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ari_offload"

# Lower ranks never import higher ones. Same rank: no arrows between different rooms.
RANKS: dict[str, int] = {
    "errors": 0, "__init__": 0,
    "audio": 1, "dialpattern": 1, "schema": 1, "turn_fields": 1,
    "config": 2, "policy": 2, "policy_file": 3,
    "media": 4, "speech": 4, "agent": 4,
    "ari": 5,
    "voice": 6,
    "flows": 7,
    "store": 8,
    "observe": 9, "quotas": 9, "retention": 9,
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
    "turn_fields",
    "flows.model",
    "flows.actions",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts) or "__init__"


def runtime_imports(path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            if not all(_is_module(name, known) for name in names):
                names.append(node.module)  # names from the module itself, not submodules
        for name in names:
            if name == "ari_offload":
                found.add("__init__")
            elif name.startswith("ari_offload."):
                inner = name.removeprefix("ari_offload.").removesuffix(".__init__")
                if inner in known or f"{inner}.__init__" in known:
                    found.add(inner if inner in known else f"{inner}.__init__")
    return found


def _is_module(name: str, known: set[str]) -> bool:
    inner = name.removeprefix("ari_offload.")
    return inner in known or f"{inner}.__init__" in known


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {name: runtime_imports(path, known) - {name} for name, path in paths.items()}


def room(module: str) -> str:
    return module.split(".")[0]


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
            if RANKS[b] >= RANKS[a] or b in FORBIDDEN.get(a, set()):
                wrong.append(f"{module} (rank {RANKS[a]}) imports {target} (rank {RANKS[b]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_sdk_client_stands_alone() -> None:
    edges = graph()
    reached: set[str] = set()
    todo = ["sdk.client"]
    while todo:
        for target in edges[todo.pop()] - reached:
            reached.add(target)
            todo.append(target)
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
