"""The `>>>` examples in the library's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re

import pytest

import hf_nuggets

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(hf_nuggets.__path__, "hf_nuggets.") if not name.endswith("__main__")
)


class FencedDocTestParser(doctest.DocTestParser):
    """Reads HF-style docstrings, whose examples sit inside ```python fences, by dropping the fence lines."""

    def parse(self, string, name="<string>"):
        return super().parse(re.sub(r"^\s*```\w*\s*$", "", string, flags=re.M), name)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tiny_prospector):
    """Every docstring example of the module passes (`tiny_prospector` stands in for a real model)."""
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(parser=FencedDocTestParser())
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, globs={**vars(module), "tiny_prospector": tiny_prospector}):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed in {name}"
