"""The serving process collects garbage less often (listener.tune_gc), never more often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from amqplite.server.listener import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restore_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("restore_thresholds")
def test_tune_gc_raises_the_default_thresholds() -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS


@pytest.mark.usefixtures("restore_thresholds")
def test_tune_gc_never_lowers_thresholds_set_higher_by_the_embedding_application() -> None:
    higher = (GC_THRESHOLDS[0] * 2, GC_THRESHOLDS[1] * 2, GC_THRESHOLDS[2] * 2)
    gc.set_threshold(*higher)
    tune_gc()
    assert gc.get_threshold() == higher
