"""Globals and closure values are baked into the generated code when it is built. A new
transformation must see their current values (found by red-team testing: a changed global
was ignored even by a fresh sourcediff.grad), and so must `@differentiate`'s methods after a
global is rebound."""
import warnings

import numpy as np
import pytest

import sourcediff
from sourcediff.frontend import free_values_key

SCALE = 2.0
TARGET = np.array([1.0, 1.0])
W = np.array([1.0, 2.0])


def loss(w):
    return np.sum(SCALE * (w - TARGET) ** 2)


def uses_helper(w):
    return _helper(w) + 1.0


def _helper(w):
    return np.sum(SCALE * w * w)


@pytest.fixture(autouse=True)
def _restore_globals():
    global SCALE, TARGET
    saved = SCALE, TARGET
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    SCALE, TARGET = saved


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_a_new_transformation_sees_a_rebound_global(backend):
    global SCALE
    np.testing.assert_allclose(sourcediff.grad(loss, backend=backend)(W), 2 * 2.0 * (W - TARGET))
    SCALE = 5.0
    np.testing.assert_allclose(sourcediff.grad(loss, backend=backend)(W), 2 * 5.0 * (W - TARGET))
    np.testing.assert_allclose(sourcediff.grad(uses_helper, backend=backend)(W), 2 * 5.0 * W)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_a_new_transformation_sees_a_global_array_changed_in_place(backend):
    global TARGET
    TARGET = np.array([1.0, 1.0])
    np.testing.assert_allclose(sourcediff.grad(loss, backend=backend)(W), 2 * 2.0 * (W - 1.0))
    TARGET[:] = 0.0
    np.testing.assert_allclose(sourcediff.grad(loss, backend=backend)(W), 2 * 2.0 * W)


def test_differentiate_methods_follow_a_rebound_global():
    global SCALE
    f = sourcediff.differentiate(loss, backend="python")
    np.testing.assert_allclose(f.grad(W), 2 * 2.0 * (W - TARGET))
    g1 = f._get("grad")
    np.testing.assert_allclose(f.grad(W), 2 * 2.0 * (W - TARGET))
    assert f._get("grad") is g1  # nothing changed: the same gradient object
    SCALE = 3.0
    np.testing.assert_allclose(f.grad(W), 2 * 3.0 * (W - TARGET))
    _, d = f.jvp(W, np.array([1.0, 0.0]))
    assert d == pytest.approx(2 * 3.0 * (W[0] - TARGET[0]))


def test_free_values_key():
    global SCALE
    k1 = free_values_key(uses_helper)
    assert k1 == free_values_key(uses_helper)
    SCALE = 4.0
    k2 = free_values_key(uses_helper)  # through the helper
    assert k2 != k1
    before = free_values_key(loss)
    TARGET[1] = -3.0
    assert free_values_key(loss) != before  # content, not identity
    assert free_values_key(loss, content=False) == free_values_key(loss, content=False)
