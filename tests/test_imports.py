"""Where shared test code lives: helpers that more than one folder (or the benchmark) uses are in
testkit/, never in a test file or a conftest; bench/ and testkit/ import nothing from tests/."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, anywhere in it; ``from a import b`` yields ``a`` and
    ``a.b`` (b may be a module)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def is_test_or_conftest(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


@pytest.mark.parametrize("folder", ["bench", "testkit"])
def test_bench_and_testkit_import_nothing_from_tests(folder: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources(folder)
        for module in imported_modules(path)
        if module == "tests" or module.startswith("tests.")
    }
    assert not wrong


def test_no_module_imports_a_test_file_or_a_conftest() -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources("tests", "testkit", "bench")
        for module in imported_modules(path)
        if module.startswith(("tests.", "testkit.", "bench.")) and is_test_or_conftest(module)
    }
    assert not wrong


def test_tests_share_helpers_across_folders_only_through_testkit() -> None:
    wrong = set()
    for path in sources("tests"):
        own = ".".join(path.parent.relative_to(ROOT).parts)
        for module in imported_modules(path):
            if module.startswith("tests.") and module != own and not module.startswith(own + "."):
                wrong.add(f"{path.relative_to(ROOT)}: {module}")
    assert not wrong


WEB_FRAMEWORKS = ("fastapi", "starlette")
OUR_PACKAGES = ("gateway", "servicekit", "transcoder")


def module_path(module: str) -> Path | None:
    """The file of one of our modules (``None`` for a third-party one or a name in a module)."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def web_imports(path: Path, seen: set[Path]) -> Iterator[str]:
    """Chains ``a -> b -> fastapi`` by which ``path``, or one of our modules it imports (at any
    depth), imports a web framework."""
    seen.add(path)
    here = path.relative_to(ROOT)
    for module in imported_modules(path):
        if module.split(".")[0] in WEB_FRAMEWORKS:
            yield f"{here} -> {module}"
            continue
        found = module_path(module) if module.split(".")[0] in OUR_PACKAGES else None
        if found is not None and found not in seen:
            yield from (f"{here} -> {chain}" for chain in web_imports(found, seen))


@pytest.mark.parametrize(
    "layer",
    ["gateway/storage", "gateway/db.py", "gateway/repositories.py", "gateway/models"],
)
def test_the_data_layers_import_no_web_framework(layer: str) -> None:
    paths = sorted((ROOT / layer).rglob("*.py")) if (ROOT / layer).is_dir() else [ROOT / layer]
    assert paths
    assert [chain for path in paths for chain in web_imports(path, set())] == []


def test_the_web_import_check_sees_a_router() -> None:
    # The check's teeth: a router does import FastAPI, through itself or what it imports.
    assert list(web_imports(ROOT / "gateway/records/router.py", set()))
