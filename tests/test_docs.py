"""What the docs quote and show must be what the code is and prints."""

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dpgkit.agent import DDPGAgent
from dpgkit.autograd_steps import AutogradSteps

DOCS = Path(__file__).resolve().parents[1] / "docs"


def tutorial_quote(first_line: str) -> str:
    """The tutorial's Python block that starts with ``first_line``."""
    text = (DOCS / "tutorial.md").read_text()
    start = text.index(f"```python\n{first_line}") + len("```python\n")
    return text[start:text.index("```", start)]


def source_of(cls: type, *names: str) -> str:
    return "\n".join(textwrap.dedent(inspect.getsource(getattr(cls, name))) for name in names)


def test_the_tutorial_quotes_the_update_from_agent_py_verbatim():
    quoted = tutorial_quote("def update(self, batch: Batch)")
    source = source_of(DDPGAgent, "update", "update_critic", "update_actor", "update_targets")
    assert quoted == source


def test_the_tutorial_quotes_the_autograd_steps_verbatim():
    quoted = tutorial_quote("def critic_step(")
    assert quoted == source_of(AutogradSteps, "critic_step", "actor_step")


@pytest.mark.parametrize("command", ["", "train", "eval", "plot", "export", "tune"])
def test_cli_md_shows_each_command_s_current_usage(command):
    """docs/cli.md shows `dpgkit [COMMAND] --help` as printed 100 columns wide (for train, its
    usage lines only)."""
    result = subprocess.run([sys.executable, "-m", "dpgkit", *command.split(), "--help"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "100"})
    shown = result.stdout.split("\n\n")[0] if command == "train" else result.stdout
    assert shown.strip() in (DOCS / "cli.md").read_text()


def test_developer_md_places_every_module_in_a_layer():
    """The next engineer finds each module of dpgkit/ in docs/developer.md's table of layers."""
    text = (DOCS / "developer.md").read_text()
    table = text[text.index("| layer | modules | owns |"):text.index("**Module size.**")]
    modules = sorted(p.name for p in (DOCS.parent / "dpgkit").glob("*.py"))
    assert [name for name in modules if f"`{name}`" not in table] == []


def test_modules_stay_small_or_are_named_where_developer_md_says_why():
    """About 250 lines a module (260 allowed); the few over it are named, with their reason, in
    docs/developer.md's "Module size" paragraph, and stay under 300 (equations.py: 400)."""
    text = (DOCS / "developer.md").read_text()
    paragraph = text[text.index("**Module size.**"):text.index("**Where to start reading.**")]
    root = DOCS.parent
    for path in [*(root / "dpgkit").glob("*.py"), *(root / "benchmarks").glob("*.py")]:
        lines = len(path.read_text().splitlines())
        named = f"`{path.name}`" in paragraph
        limit = 400 if path.name == "equations.py" else 300 if named else 260
        assert lines <= limit, f"{path.name} has {lines} lines (limit {limit}): split it"
