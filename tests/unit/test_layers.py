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
    "errors": 0, "audio": 0, "dialpattern": 0, "schema": 0, "__init__": 0,
    "config": 1, "policy": 1, "policy_file": 1,
    "media": 2, "speech": 2, "agent": 2,
    "ari": 3,
    "voice": 4,
    "flows": 5,
    "store": 6,
    "observe": 7, "quotas": 7, "retention": 7,
    "api": 8,
    "sdk": 9,
    "telephony": 10, "service": 10, "app": 10, "doctor": 10, "cli": 11,
}  # fmt: skip
# The API answers HTTP from the store; it never reaches into calls or engines directly.
FORBIDDEN = {"api": {"ari", "voice", "media", "speech", "telephony"}}
# The SDK is a thin client of the REST API: importable without the server's machinery.
SDK_CLIENT_MAY_IMPORT = {"__init__", "errors", "schema", "flows.model", "voice.turns"}


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
    imports = graph()["sdk.client"]
    assert imports <= SDK_CLIENT_MAY_IMPORT, sorted(imports - SDK_CLIENT_MAY_IMPORT)


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
