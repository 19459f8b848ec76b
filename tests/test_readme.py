"""The README's slide-to-code tables: each quoted comment must still stand in the file and function they name."""
import ast
import re

import pytest

from conftest import ROOT


def table_rows(section: str) -> list[list[str]]:
    """The rows of the table under `### section`, as cells, with escaped pipes (\\|) restored."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"### {section}\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("| ") and "`" in line]
    return [[cell.replace("\0", "|") for cell in row.replace("\\|", "\0").strip(" |").split(" | ")] for row in rows]


def function_source(path, qualified_name: str) -> str:
    """The source of Class.method (or a function) in the file at `path`."""
    source = path.read_text()
    node = ast.parse(source)
    for part in qualified_name.split("."):
        node = next(n for n in ast.iter_child_nodes(node)
                    if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part)
    return ast.get_source_segment(source, node)


@pytest.mark.parametrize("section,folder,at_least", [("DDPG (`DDPG/`)", "DDPG", 10), ("SAC (`SAC/`)", "SAC", 13)])
def test_every_mapped_comment_stands_in_the_function_named(section, folder, at_least):
    squeeze = lambda text: re.sub(r"\s+", "", text)  # noqa: E731
    rows = table_rows(section)
    assert len(rows) >= at_least
    for step, file, function, comment in rows:
        quoted = re.findall(r"`([^`]+)`", comment)[0]
        source = function_source(ROOT / folder / file.strip("`"), function.strip("`"))
        assert squeeze(quoted) in squeeze(source), f"README maps {step!r} to {file} {function}: {quoted!r} is gone"
