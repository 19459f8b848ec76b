"""The README's slide-to-code tables quote code: each quoted line must still stand in its folder's files."""
import re

import pytest

from conftest import ROOT


def table_rows(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.startswith("| ") and "`" in line]


@pytest.mark.parametrize("section,folder", [("DDPG: slide to code", "DDPG"), ("SAC: slide to code", "SAC")])
def test_every_quoted_line_is_in_the_code(section, folder):
    squeeze = lambda text: re.sub(r"\s+", "", text)  # noqa: E731 - a quoted line may wrap in the code
    sources = squeeze("\n".join(p.read_text() for p in (ROOT / folder).glob("*.py")))
    rows = table_rows(section)
    assert len(rows) >= 6
    for row in rows:
        code_cell = row.rstrip(" |").split(" | ")[-1]
        quoted = re.findall(r"`([^`]+)`", code_cell)[0].replace("\\|", "|")
        assert squeeze(quoted) in sources, f"README quotes code that {folder}/ no longer has: {quoted}"
