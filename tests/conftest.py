"""Both DDPG/ and SAC/ define modules named buffer, networks and utils (the lecture's flat layout).

`load_folder` imports a folder's modules afresh, evicting same-named modules loaded from the other folder.
"""
import importlib
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLAT_MODULES = ("utils", "buffer", "networks", "noise", "ddpg_torch", "main_ddpg", "sac_torch", "main_sac")


def load_folder(folder: str, names: tuple[str, ...]) -> types.SimpleNamespace:
    for name in FLAT_MODULES:
        sys.modules.pop(name, None)
    path = str(ROOT / folder)
    sys.path.insert(0, path)
    try:
        return types.SimpleNamespace(**{name: importlib.import_module(name) for name in names})
    finally:
        sys.path.remove(path)


@pytest.fixture(scope="module")
def ddpg() -> types.SimpleNamespace:
    """DDPG/'s modules: ddpg.buffer, ddpg.networks, ddpg.noise, ddpg.ddpg_torch, ddpg.utils, ddpg.main_ddpg."""
    return load_folder("DDPG", ("utils", "buffer", "networks", "noise", "ddpg_torch", "main_ddpg"))


@pytest.fixture(scope="module")
def sac() -> types.SimpleNamespace:
    """SAC/'s modules: sac.buffer, sac.networks, sac.sac_torch, sac.utils, sac.main_sac."""
    return load_folder("SAC", ("utils", "buffer", "networks", "sac_torch", "main_sac"))
