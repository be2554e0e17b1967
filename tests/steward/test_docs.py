"""The README stays true: its configuration table lists every variable the code reads."""

from pathlib import Path

from steward.env import VARIABLES

ROOT = Path(__file__).resolve().parents[2]


def test_readme_lists_every_environment_variable_with_its_default():
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("# Steward\n\n```\nmake run")
    for var in VARIABLES.values():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{var.name}` |")), None)
        assert row is not None, f"README misses {var.name}"
        assert (f"`{var.default}`" in row) if var.default else "(empty)" in row, row
