"""The README's results are the results files': every table row and every measured number in the README's results
sections, and in the results pages under docs/ (PAGES: every section of each), must be found in a file that the
same section cites (benchmarks/results/... or docs/...).

A section's cited files are the paths it names (`benchmarks/results/time_to_solve.{csv,md,png}` names three).
A table row must appear verbatim in a cited .md file (the scripts write the tables; the README copies them). A
number with a decimal point in the prose (minutes, means, ratios such as 4.9x) must appear, as written or rounded
from the file's value, in a file (.md or .csv) that its own paragraph or list item cites, and so must every number
grouped by commas (179,464); a paragraph that cites no file is checked against the .md files its section cites.
Looking a number up in every file of the section would prove little: a section citing per-episode CSVs and a
dozen tables holds almost any one-decimal number somewhere.
Smaller integers (seeds, sizes, dates) and rounded figures in words (179k) are not checked, nor versions
(0.26.2).
"""
import functools
import re
from pathlib import Path

import pytest

from conftest import ROOT

SECTIONS = ("What the agents learned", "Results at a glance")
PAGES = ("docs/results.md", "docs/performance.md", "docs/gpu.md")  # results pages: each checked whole, as one section
# Decimals in these sections that are not measurements: each with the reason it is not looked up.
NOT_MEASURED = {
    "1.3": "the update-speed goal (1.3x faster than SB3)",
    "1.25": "the goal for the update against its matmul floor (1.25x), beside the measured 1.25x of SAC 400x300",
    "5,000": "update_speed.py's replay buffer fill, a setting",
    "300,000": "the HalfCheetah command's step budget, a setting",
    "10,000": "the warm-up steps of random actions, a setting",
    "120,000": "the robustness goal for SAC's median env steps to solve",
    "130,000": "the robustness goal for DDPG's median env steps to solve",
    "180,000": "the earlier (gym 0.26.2) robustness goal for DDPG's median env steps to solve",
    "50,000": "the notebook's default env steps, a setting",
    "1,100": "the env steps of the notebook's test run, a setting",
    "1,000": "the episode cap of --episodes and SAC's warm-up steps, settings",
}
# Cited files that a machine or a run this repository does not have yet writes: named, with what writes them.
PENDING = {"benchmarks/results/gpu.md": "benchmarks/gpu.py, on a GPU machine"}


def sections() -> dict[str, str]:
    """The README's results sections by title, and each results page by its path."""
    parts = re.split(r"(?m)^## ", (ROOT / "README.md").read_text())
    found = {part.splitlines()[0]: part for part in parts[1:] if part.startswith(SECTIONS)}
    return found | {page: (ROOT / page).read_text() for page in PAGES}


def cited_files(section: str) -> list[Path]:
    """The paths a section names; `a.{csv,md}` names a.csv and a.md."""
    paths = []
    for m in re.finditer(r"((?:benchmarks/results|docs)/[\w./-]*?)(\{[\w,]+\})?(?=[`)\s,;:]|$)", section):
        base, braces = m.group(1), m.group(2)
        paths += [ROOT / (base + ext) for ext in braces.strip("{}").split(",")] if braces else [ROOT / base]
    return paths


def tables(section: str) -> list[str]:
    """Every table row of the section, its separator rows left out."""
    return [line for line in section.splitlines() if line.startswith("|") and not set(line) <= set("|-")]


def prose(section: str) -> str:
    """The section without its tables, code blocks and image links."""
    lines, in_code = [], False
    for line in section.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and not line.startswith(("|", "![")):
            lines.append(line)
    return "\n".join(lines)


def paragraphs(text: str) -> list[str]:
    """The blocks of `text` between blank lines, each list item (- or 1.) a block of its own."""
    blocks = []
    for block in re.split(r"\n[ \t]*\n", text):
        blocks += [item for item in re.split(r"(?m)^(?=[-*] |\d+\. )", block) if item.strip()]
    return blocks


def decimals(text: str) -> set[str]:
    """Numbers with a decimal point (12.1, 4.9x, 1,013.5) or digits grouped by commas (179,464), not versions
    such as 0.26.2 or 2.13.0."""
    pattern = r"(?<![\w.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)(?![\d.]*\d)(?!\.\d)"
    return set(re.findall(pattern, text))


def numbers_in(text: str) -> set[str]:
    """Every number a results file holds: as written, and rounded to 0-3 decimals with and without its thousands
    grouped (a CSV writes 179464 and 8653.1234; the README quotes 179,464 and 8,653)."""
    found = set(re.findall(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)|\d+(?:\.\d+)?", text))
    rounded = set()
    for n in found:
        value = float(n.replace(",", ""))
        rounded |= {f"{value:{group}.{k}f}" for k in range(4) for group in ("", ",")}
    return found | rounded


def test_the_results_sections_are_found():
    assert sorted(sections()) == sorted([
        *(next(title for title in sections() if title.startswith(prefix)) for prefix in SECTIONS), *PAGES])


@pytest.mark.parametrize("title", sorted(sections()))
def test_every_cited_file_exists(title):
    missing = [str(p.relative_to(ROOT)) for p in cited_files(sections()[title]) if not p.exists()]
    assert [m for m in missing if m not in PENDING] == []


@pytest.mark.parametrize("title", sorted(sections()))
def test_every_table_row_is_in_a_cited_results_file(title):
    section = sections()[title]
    files = [p.read_text() for p in cited_files(section) if p.suffix == ".md" and p.is_file()]
    lines = {line.strip() for text in files for line in text.splitlines()}
    assert [row for row in tables(section) if row.strip() not in lines] == []


@functools.cache
def file_numbers(path: Path) -> frozenset[str]:
    """numbers_in of one results file (read once: several paragraphs cite the same files)."""
    text = path.read_text()
    return frozenset(numbers_in(text.replace(",", " ") if path.suffix == ".csv" else text))  # a CSV's commas part cells


def numbers_of(files: list[Path], csv: bool) -> set[str]:
    """The numbers of the .md files among `files`, and of the .csv files too where `csv`."""
    suffixes = (".md", ".csv") if csv else (".md",)
    return set().union(*(file_numbers(p) for p in files if p.suffix in suffixes and p.is_file()))


def unbacked_numbers(section: str) -> list[str]:
    """The measured numbers of the section's prose that no file backs (see the module's docstring)."""
    in_section = numbers_of(cited_files(section), csv=False)
    unbacked = set()
    for paragraph in paragraphs(prose(section)):
        own = cited_files(paragraph)
        found = numbers_of(own, csv=True) if own else in_section
        unbacked |= {n for n in decimals(paragraph) if n not in found and n not in NOT_MEASURED}
    return sorted(unbacked)


@pytest.mark.parametrize("title", sorted(sections()))
def test_every_measured_number_in_the_prose_is_in_a_cited_results_file(title):
    assert unbacked_numbers(sections()[title]) == []


def test_the_check_catches_a_number_that_differs_from_its_file():
    """The checks above on a planted section: one row and one number changed from the file's."""
    title = "docs/results.md"
    section = sections()[title]
    row = next(r for r in tables(section) if "| yes |" in r)  # a solved run's row
    # one copy changed (the same run of ours may stand in two tables)
    planted = section.replace(row, row.replace("| yes |", "| no |", 1), 1) + "\nsolved in 12.3456 minutes\n"
    files = [p.read_text() for p in cited_files(planted) if p.suffix == ".md" and p.is_file()]
    lines = {line.strip() for text in files for line in text.splitlines()}
    assert [r for r in tables(planted) if r.strip() not in lines] == [row.replace("| yes |", "| no |", 1)]
    assert "12.3456" in decimals(prose(planted)) and "12.3456" not in " ".join(files)
    assert unbacked_numbers(planted) == ["12.3456"]


def test_a_per_episode_csv_backs_only_the_paragraph_that_cites_it():
    """A score that only a per-episode CSV holds is unbacked in a paragraph that does not cite that CSV."""
    title = "docs/results.md"
    section = sections()[title]
    csv = max((p for p in cited_files(section) if p.suffix == ".csv"), key=lambda p: p.stat().st_size)
    only_in_csv = sorted(n for n in decimals(csv.read_text().replace(",", " "))
                         if n not in numbers_of(cited_files(section), csv=False))
    assert only_in_csv, f"{csv.name} holds no score that the section's .md files lack"
    score = only_in_csv[0]
    name = str(csv.relative_to(ROOT))
    assert unbacked_numbers(section + f"\nOne episode scored {score}.\n") == [score]
    assert unbacked_numbers(section + f"\nOne episode of `{name}` scored {score}.\n") == []
