"""The README's Python snippets run as written (a user copies them first)."""

from __future__ import annotations

import os
import re

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _python_blocks() -> list[str]:
  with open(README, encoding="utf-8") as f:
    return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_readme_has_python_snippets():
  assert _python_blocks(), "README.md lost its Python example"


def test_readme_python_snippets_run():
  for block in _python_blocks():
    exec(compile(block, README, "exec"), {"__name__": "readme"})  # noqa: S102
