from __future__ import annotations

import pytest
from broker_helpers import World


@pytest.fixture
def world() -> World:
    return World()
