"""What ``ClusterModel.fit`` refuses or says before it learns: labels of one identity,
and labels given to settings that learn nothing from them."""

import numpy as np
import pytest
from helpers import unit_rows, warnings_logged

import facecluster
from facecluster import registry


def learning_settings(name: str) -> dict:
    """Settings of ``name`` that learn from labels: its defaults where they do (a trained
    method, ``auto``), else its main setting on 'auto'."""
    method = registry.get(name)
    if method.needs_labels(method.params.resolve({})):
        return {}
    knob = next(iter(method.params))
    settings = {knob: "auto"}
    assert method.needs_labels(method.params.resolve(settings)), name
    return settings


@pytest.mark.parametrize("name", registry.names())
def test_labels_of_one_identity_are_refused_before_any_learning(name, monkeypatch):
    """One person's faces cannot show where different people part: before, the kNN
    methods chose τ on them in silence and the trained methods failed after 7 to 67 s of
    training with a message about held-out faces (NDDe/TPDi fitted a model)."""
    x = unit_rows(np.random.default_rng(0).normal(size=(60, 16)))
    model = facecluster.model(name, **learning_settings(name))

    def learned(*args):
        raise AssertionError("fit began learning")

    monkeypatch.setattr(model, "_fit", learned)
    with pytest.raises(ValueError, match=f"{name} learns from labels of at least two "
                                         "identities; these 60 faces hold 1"):
        model.fit(x, np.full(60, 7))
    assert not model.fitted


def test_labels_given_to_settings_that_learn_nothing_from_them_are_named():
    """``model("infomap").fit(x, y)`` kept τ 0.58 and said nothing; it still fits (a
    pipeline may fit every model alike) and says that the labels went unused and where
    'auto' is."""
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(6), 10)
    x = unit_rows(np.eye(12)[labels] * 3 + 0.3 * rng.normal(size=(60, 12)))
    with warnings_logged() as records:
        fixed = facecluster.model("infomap").fit(x, labels)
    assert fixed.fitted and fixed.dim == 12
    said = [r.getMessage() for r in records]
    assert any("infomap with these settings learns nothing from labels" in m and
               "`facecluster params infomap`" in m for m in said), said
    with warnings_logged() as records:
        facecluster.model("infomap", threshold="auto").fit(x, labels)
    assert not any("learns nothing" in r.getMessage() for r in records)
