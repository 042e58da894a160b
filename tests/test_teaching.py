"""The classroom kit: every notebook states its objective and time, and docs/teaching.md stays true.

A teacher plans a lesson from docs/teaching.md and a learner reads the objective line at the top of a
notebook; both must say the same, name every notebook, link to files that exist, and quote only
numbers the committed notebooks really print.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
TEACHING = ROOT / "docs" / "teaching.md"
PATHS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
OBJECTIVE = re.compile(r"^\*\*Objective:\*\* (?P<goal>\S.*\S) · \*\*About (?P<minutes>\d+) minutes\.\*\*$")
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
NUMBER = re.compile(r"`(?P<number>[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?%?)`")  # a measured number quoted as code


def objective_line(path: Path) -> str:
    """The objective line of a notebook: the paragraph right after its title and its quote."""
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell is not markdown"
    paragraphs = first.source.split("\n\n")
    assert paragraphs[0].startswith("# "), f"{path.name}: the first cell does not start with a title"
    after_quote = 2 if paragraphs[1].startswith(">") else 1
    return paragraphs[after_quote]


def printed_text() -> str:
    """Everything the committed notebooks print: streams and the plain-text form of their results."""
    parts = []
    for path in PATHS:
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                parts.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_there_are_notebooks_to_check():
    assert len(PATHS) >= 10


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_each_notebook_opens_with_its_objective_and_time(path):
    line = objective_line(path)
    match = OBJECTIVE.match(line)
    assert match, (
        f"{path.name}: under the title and quote, expected '**Objective:** … · **About N minutes.**', found {line!r}"
    )
    assert 5 <= int(match["minutes"]) <= 60, f"{path.name}: {match['minutes']} minutes is not a plausible estimate"


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_teaching_guide_quotes_each_notebook_and_its_objective(path):
    guide = TEACHING.read_text(encoding="utf-8")
    assert path.name in guide, f"docs/teaching.md does not mention {path.name}"
    assert objective_line(path) in guide.splitlines(), (
        f"docs/teaching.md does not quote {path.name}'s objective line as the notebook states it"
    )


def test_teaching_guide_links_resolve():
    guide = TEACHING.read_text(encoding="utf-8")
    targets = [match["target"].split("#")[0] for match in LINK.finditer(guide)]
    local = [target for target in targets if target and "://" not in target]
    assert local, "docs/teaching.md links to no notebook"
    missing = [target for target in local if not (TEACHING.parent / target).resolve().is_file()]
    assert not missing, f"docs/teaching.md links to files that do not exist: {missing}"


def test_teaching_guide_quotes_only_printed_numbers():
    guide, printed = TEACHING.read_text(encoding="utf-8"), printed_text()
    quoted = {match["number"] for match in NUMBER.finditer(guide)}
    assert quoted, "docs/teaching.md quotes no measured number"
    unprinted = sorted(number for number in quoted if not re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", printed))
    assert not unprinted, f"docs/teaching.md quotes numbers no committed notebook prints: {unprinted}"


def test_end_quiz_has_ten_questions_with_folded_answers():
    quiz = TEACHING.read_text(encoding="utf-8").split("## End quiz", 1)[1]
    questions = re.findall(r"^\d+\. ", quiz, flags=re.MULTILINE)
    answers = quiz.count("<details><summary>Answer</summary>")
    assert len(questions) == answers == 10, f"{len(questions)} questions and {answers} folded answers"
    assert quiz.count("</details>") == 10


def test_readme_points_to_the_teaching_guide():
    assert "(docs/teaching.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
