"""The README's slide-to-code tables: each quoted comment must still stand in the file and function they name. And
every link of the README and its pages leads somewhere: the file exists, and so does the section an anchor names."""
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


MARKDOWN = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
            "benchmarks/README.md", "benchmarks/results/README.md"]


def anchors(path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"(?m)^#+ (.+)$", re.sub(r"(?ms)^```.*?^```", "", path.read_text()))
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links(text: str) -> list[str]:
    """The targets of a page's Markdown links and images, web addresses left out."""
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]


def broken_links(source) -> list[str]:
    """The links of the page at `source` whose file, or whose anchor's heading in that file, does not exist."""
    broken = []
    for target in links(source.read_text()):
        file, _, anchor = target.partition("#")
        path = (source.parent / file).resolve() if file else source
        if not path.exists() or (anchor and anchor not in anchors(path)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", MARKDOWN)
def test_every_link_leads_to_a_file_and_section_that_exist(page):
    assert broken_links(ROOT / page) == []


def test_the_link_check_catches_a_missing_file_and_a_missing_section(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## SAC's additions, on gym 0.26.2\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n[ok](other.md#sacs-additions-on-gym-0262) [here](#page) [web](https://example.org)\n"
                    "[gone](missing.md) [no section](other.md#no-such-section) ![figure](missing.png)\n")
    assert broken_links(page) == ["missing.md", "other.md#no-such-section", "missing.png"]
