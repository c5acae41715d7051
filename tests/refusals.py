"""Functions using constructs sourcediff refuses (tests/test_errors.py checks the messages).
Each marks the refused line with a comment `# <- REFUSED`."""
import numpy as np


def uses_try(x):
    try:  # <- REFUSED
        y = x * 2
    except ValueError:
        y = x
    return y


def uses_with(x):
    with open("f") as fh:  # <- REFUSED
        y = x
    return y


G = 1.0


def uses_global(x):
    global G  # <- REFUSED
    G = x
    return x


def uses_lambda(x):
    f = lambda v: v * 2  # <- REFUSED
    return f(x)


def uses_comprehension(x):
    ys = [v * 2 for v in x]  # <- REFUSED
    return np.sum(ys)


def uses_generator(x):
    yield x  # <- REFUSED


def uses_print(x):
    print(x)  # <- REFUSED
    return x * 2


def uses_nested_def(x):
    def inner(v):  # <- REFUSED
        return v
    return inner(x)


def attribute_write(x, obj):
    obj.value = x  # <- REFUSED
    return x


def unknown_library_call(x):
    return np.polyval(x, 2.0) * 2.0  # <- REFUSED


def star_args(*xs):  # <- REFUSED
    return xs[0]


class Box:
    def __init__(self, v):
        self.v = v


def creates_object(x):
    b = Box(x)  # <- REFUSED
    return x


def calls_c_function(x):
    q, r = divmod(x, 0.7)  # <- REFUSED
    return r * x
