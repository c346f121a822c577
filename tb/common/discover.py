"""Where the cocotb tests are, and which pytest entries run them (reads source, runs nothing).

Used by ``make sim TEST=<test>`` (tests/conftest.py selects the pytest entries that run
the test's module and passes the test name on), by the reproduce command printed for
every failure, and by ``make waves``. Imports no cocotb and no simulator.

A test is named by its function (or pyuvm class) name, or ``<module>::<name>`` when the
name is defined in several modules. ``<module>`` is the file's stem (``test_noc``), a
dotted tail (``noc.uvm``) or the full module (``tb.noc.uvm``). A test made with
``cocotb.parametrize`` runs once per parameter set, named ``<name>/<param>=<value>...``
(``test_host_errors/stall=0.0``): the bare name selects every set, the full name one.
"""
from __future__ import annotations

import ast
import difflib
import functools
from pathlib import Path

__all__ = ["TestLookupError", "base_name", "cocotb_tests", "find_test", "qualified_name",
           "sim_entries", "entries_running"]

ROOT = Path(__file__).resolve().parent.parent.parent
_TEST_DECORATORS = {("cocotb", "test"), ("pyuvm", "test")}


class TestLookupError(LookupError):
    """No cocotb test, or several, match a ``TEST=`` name; the message says which exist."""

    __test__ = False      # not a pytest test class


def _is_test_decorator(node: ast.expr) -> bool:
    if isinstance(node, ast.Call):
        node = node.func
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in _TEST_DECORATORS)


@functools.lru_cache(maxsize=None)
def cocotb_tests(root: Path = ROOT) -> dict[str, tuple[str, ...]]:
    """``{dotted module: (test names in definition order)}`` for every module under
    ``tb/`` with ``@cocotb.test()`` functions or ``@pyuvm.test()`` classes."""
    found: dict[str, tuple[str, ...]] = {}
    for path in sorted((root / "tb").rglob("*.py")):
        text = path.read_text()
        if ".test(" not in text and ".test\n" not in text:
            continue
        try:
            tree = ast.parse(text, str(path))
        except SyntaxError:           # a file being edited: skip it, do not break selection
            continue
        names = tuple(n.name for n in tree.body
                      if isinstance(n, (ast.AsyncFunctionDef, ast.FunctionDef, ast.ClassDef))
                      and any(_is_test_decorator(d) for d in n.decorator_list))
        if names:
            found[".".join(path.relative_to(root).with_suffix("").parts)] = names
    return found


def _module_matches(module: str, hint: str) -> bool:
    return not hint or module == hint or module.endswith("." + hint)


def base_name(name: str) -> str:
    """The function name of a test: ``name`` without a ``/<param>=<value>`` suffix."""
    return name.partition("/")[0]


def qualified_name(module: str, name: str, root: Path = ROOT) -> str:
    """The shortest ``TEST=`` spelling that selects exactly ``module``'s ``name`` (a
    parametrized name keeps its suffix)."""
    owners = [m for m, names in cocotb_tests(root).items() if base_name(name) in names]
    if owners == [module]:
        return name
    parts = module.split(".")
    for i in range(len(parts) - 1, -1, -1):
        hint = ".".join(parts[i:])
        if [m for m in owners if _module_matches(m, hint)] == [module]:
            return f"{hint}::{name}"
    return f"{module}::{name}"


def find_test(spec: str, root: Path = ROOT) -> tuple[str, str]:
    """``(dotted module, test name)`` for ``<name>`` or ``<module>::<name>``.

    Raises
    ------
    TestLookupError
        No test matches (the message lists close matches), or the name is defined in
        several modules (the message lists the ``<module>::<name>`` spellings).
    """
    hint, _, name = spec.strip().rpartition("::")
    tests = cocotb_tests(root)
    hits = [m for m, names in tests.items()
            if base_name(name) in names and _module_matches(m, hint)]
    if len(hits) == 1:
        return hits[0], name
    if len(hits) > 1:
        raise TestLookupError(
            f"cocotb test {name!r} is defined in {len(hits)} modules; name one as TEST=<module>::"
            f"{name}: " + ", ".join(qualified_name(m, name, root) for m in hits))
    every = [(qualified_name(m, n, root), n) for m, names in tests.items() for n in names]
    key = lambda n: n.lower().removeprefix("test_")       # every name starts alike
    score = {q: difflib.SequenceMatcher(None, key(name), key(n)).ratio() for q, n in every}
    listed = sorted((q for q, n in every if score[q] >= 0.6
                     or (len(key(name)) > 2 and key(name) in key(n))), key=lambda q: -score[q])[:10]
    where = f" in a module matching {hint!r}" if hint else ""
    raise TestLookupError(
        f"no cocotb test named {name!r}{where} under tb/ ({len(every)} tests in "
        f"{len(tests)} modules); "
        + ("close matches: " + ", ".join(listed) if listed else
           "list them with: grep -rn -A1 '@cocotb.test\\|@pyuvm.test' tb/"))


@functools.lru_cache(maxsize=None)
def sim_entries(root: Path = ROOT) -> dict[tuple[str, str], frozenset[str]]:
    """``{(path under root, pytest function): cocotb modules it runs}`` for tests/sim.

    Only functions taking the ``sim_run`` fixture run simulations. A module counts when
    its dotted name is a string in the test function, in a module-level constant the
    function names, or in a helper function of the same file that it calls.
    """
    modules = set(cocotb_tests(root))
    out: dict[tuple[str, str], frozenset[str]] = {}
    for path in sorted((root / "tests" / "sim").glob("test_*.py")):
        try:
            tree = ast.parse(path.read_text(), str(path))
        except SyntaxError:
            continue
        consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                  and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                  for t in n.targets if isinstance(t, ast.Name)}
        funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

        def used(fn: ast.FunctionDef, seen: set[str]) -> set[str]:
            found = set()
            for c in ast.walk(fn):
                if isinstance(c, ast.Constant) and c.value in modules:
                    found.add(c.value)
                elif isinstance(c, ast.Name) and consts.get(c.id) in modules:
                    found.add(consts[c.id])
                elif (isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                      and c.func.id in funcs and c.func.id not in seen):
                    found |= used(funcs[c.func.id], seen | {c.func.id})
            return found

        for name, fn in funcs.items():
            if name.startswith("test"):
                runs = any(a.arg == "sim_run" for a in fn.args.args)   # the fixture
                out[(path.relative_to(root).as_posix(), name)] = \
                    frozenset(used(fn, {name}) if runs else ())
    return out


def entries_running(module: str, root: Path = ROOT) -> list[tuple[str, str]]:
    """``(path, function)`` of every tests/sim entry that runs cocotb ``module``."""
    return [k for k, mods in sim_entries(root).items() if module in mods]
