"""The garbage collector pauses for a batch stage and comes back as it was."""

import gc

import pytest

from accord import collector


@pytest.fixture(autouse=True)
def restore_collector():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_enabled_after():
    gc.enable()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_enabled_again_after_an_error():
    gc.enable()
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("stage failed")
    assert gc.isenabled()


def test_an_already_disabled_collector_stays_disabled():
    gc.disable()
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_resolution_runs_with_the_collector_paused(monkeypatch):
    from accord.identity import stage

    seen = []
    monkeypatch.setattr(stage, "_resolve", lambda *args, **kwargs: seen.append(gc.isenabled()))
    gc.enable()
    stage.resolve(None, None, "run")  # type: ignore[arg-type]
    assert seen == [False] and gc.isenabled()
