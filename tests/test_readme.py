"""The README's configuration table stays true to ``service/config.py``."""

from __future__ import annotations

from pathlib import Path

from service.config import describe_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    text = README.read_text()
    for variable, default, description in describe_settings():
        shown = f"`{default}`" if default else ""
        assert f"| `{variable}` | {shown} | {description} |" in text, variable
