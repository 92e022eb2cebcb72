"""Without torch or skorch, sksemantic imports and RQVAEEncoder says what to install."""

import pytest

from tests._helpers import run_python

_SCRIPT = """
import sys


class Block:  # a machine without {blocked}: importing it fails
    def find_spec(self, name, path=None, target=None):
        if name == {blocked!r} or name.startswith({blocked!r} + "."):
            raise ImportError(f"No module named {{name!r}}")


sys.meta_path.insert(0, Block())
import sksemantic, sksemantic.quantization
for get in (lambda: sksemantic.quantization.RQVAEEncoder, lambda: sksemantic.RQVAEEncoder):
    try:
        get()
    except ImportError as exc:
        print(exc)
    else:
        raise SystemExit("no ImportError")
assert {blocked!r} not in sys.modules
from sksemantic import *  # noqa: F403 - a star import must not fail either
from sksemantic.quantization import *  # noqa: F403
assert "RQVAEEncoder" not in sksemantic.__all__
"""


@pytest.mark.parametrize("blocked", ["torch", "skorch"])
def test_import_without_torch_extra(blocked):
    out = run_python("-c", _SCRIPT.format(blocked=blocked)).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith(f"{blocked} is required for RQVAEEncoder")
        assert "pip install 'sksemantic[torch]'" in line
