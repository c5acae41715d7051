"""The public API (API.md): grad, value_and_grad, jvp, vjp, jacobian, hessian, hvp,
differentiate, show, check_grad, supported."""
from __future__ import annotations

import copy
import functools
import inspect
import threading
from dataclasses import dataclass

import numpy as np

from . import backend as _backend
from . import codegen, commoning, forward, fusion, optimize, reverse, runtime, second_order, subroutines, tapes
from .check import finite_difference_grad, max_relative_error
from .errors import SourceDiffError
from .aliasing import check_writes_through_aliases
from .frontend import free_values_key, parse_function
from .ir import Assign, Const, For, Prim, While, blocks_of, format_function
from .lower import lower_function
from .names import NameGen, names_taken
from .rules.registry import REGISTRY

MODES = ("reverse", "forward")
BACKENDS = ("auto", "numba", "python")


# ----------------------------------------------------------------------------- wrt handling
def _params_of(f) -> list:
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        raise SourceDiffError(f"cannot read the parameters of {f!r}") from None
    out = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SourceDiffError(
                f"{f.__qualname__}() takes *args/**kwargs: a differentiated function needs named parameters.\n"
                "  Instead: name every parameter explicitly.")
        out.append(p.name)
    return out


def resolve_wrt(f, wrt) -> tuple:
    """(list of parameter names, single?) for a wrt given as int, str or tuple of them."""
    params = _params_of(f)
    single = not isinstance(wrt, (tuple, list))
    items = [wrt] if single else list(wrt)
    if not items:
        raise SourceDiffError("wrt is empty: name at least one argument to differentiate with respect to")
    names = []
    for w in items:
        if isinstance(w, (int, np.integer)) and not isinstance(w, bool):
            if not -len(params) <= w < len(params):
                raise SourceDiffError(f"wrt={w} is out of range: {f.__qualname__}() has {len(params)} "
                                      f"parameters {tuple(params)}")
            names.append(params[w])
        elif isinstance(w, str):
            if w not in params:
                raise SourceDiffError(f"wrt={w!r} is not a parameter of {f.__qualname__}{tuple(params)}")
            names.append(w)
        else:
            raise SourceDiffError(f"wrt must be an int, a str or a tuple of them, not {w!r}")
    if len(set(names)) != len(names):
        raise SourceDiffError(f"wrt names an argument twice: {tuple(names)}")
    return names, single


# ----------------------------------------------------------------------------- building
@dataclass
class Built:
    source: str
    extra_globals: dict
    entry: str
    function: object  # the IR Function of the entry
    recursive: bool = False  # calls recursive user functions (kept as functions)


_LOWER_CACHE: dict = {}
_BUILD_LOCK = threading.RLock()


def lowered(f, split: bool = False):
    """The IR of `f` (cached on the function object and its code).  `split`: helpers with
    loops stay calls (reverse mode differentiates them as functions of their own)."""
    key = (f, getattr(f, "__code__", None), split)
    values = free_values_key(f)  # globals are baked in: a changed one means a new lowering
    try:
        hit = _LOWER_CACHE.get(key)
    except TypeError:
        hit = None
    if hit is not None and hit[0] == values:
        return hit[1]
    fn = lower_function(f, split=split)
    try:
        _LOWER_CACHE[key] = (values, fn)
    except TypeError:  # pragma: no cover
        pass
    return fn


def build(f, wrt_names: list, mode: str, single: bool, pattern=(), fuse: bool = False,
          guess_shapes: bool = False) -> Built:
    """Generate the source of one transformation.  `pattern` says, per positional argument of
    the generated function, its ndim (the code is specialised on it); for "grad" with every
    parameter a scalar, the output's adjoint is 1.0, not a parameter.  `fuse`: for the Numba
    backend, element-wise array statements become explicit loops (`fusion`); `guess_shapes`:
    over array parameters too that are guessed to have the shape of what they meet (the code
    raises `runtime.ShapeGuessFailed` if they do not)."""
    import copy

    def scalars(fn):
        return tuple(p for p, nd in zip(fn.params, pattern) if nd == 0)

    def ndims(fn):
        return {p: nd for p, nd in zip(fn.params, pattern) if nd is not None}

    with _BUILD_LOCK:
        split = mode in ("reverse", "grad")
        primal = optimize.simplify_primal(copy.deepcopy(lowered(f, split)))
        # writes through aliases: checked knowing how many dimensions the arguments have
        check_writes_through_aliases(parse_function(f), ndims(primal))
        constant_seed = mode == "grad" and _scalars_only(pattern, len(primal.params))
        if constant_seed:
            pattern = tuple(pattern[:len(primal.params)]) + (0,) * len(primal.returns)
        taken = _all_names(primal)
        names = NameGen(taken)
        extra_functions = subroutines.generated_functions(primal, _subroutine_ir, split)
        if mode == "primal":
            extra_functions = [g for g in extra_functions if g.name != primal.name]
        recursive = bool(extra_functions)
        if split:
            keys = subroutines.split_calls(primal, wrt_names, _split_ir, names, scalars(primal), ndims(primal))
            extra_functions += subroutines.split_functions(keys, {g.name for g in extra_functions} | {primal.name})
        if mode in ("reverse", "grad"):
            def gradient(remat_maths, names):
                rt = reverse.ReverseTransform(copy.deepcopy(primal), wrt_names, names, pattern, remat_maths)
                out = rt.run()
                out.single_wrt = single
                if mode == "grad":
                    _drop_scalar_value(out, scalars(out), ndims(out))
                    if constant_seed:
                        out.params = out.params[:len(primal.params)]
                        out.body[:0] = [Assign(seed, Const(1.0)) for seed in rt.seed_params]
                return _finish_reverse(out, {rt.bar(n) for n in rt.owned}, scalars(out), ndims(out),
                                       list(wrt_names) + list(rt.seed_params))
            # scalar maths in loops: recompute it in the backward sweep (no tape, and maybe no
            # forward loop at all) or tape it (when the forward sweep computes it anyway);
            # the version with fewer maths calls in loops wins
            out = gradient(True, copy.deepcopy(names))
            if _loop_maths_calls(out):
                taped = gradient(False, names)
                if _loop_maths_calls(taped) < _loop_maths_calls(out):
                    out = taped
            word = "grad of"
        elif mode == "forward":
            out = forward.tangent(primal, wrt_names, names)  # returns the output's tangent(s)
            optimize.optimize(out, (), scalars(out), ndims(out))
            word = "tangent of"
        elif mode == "hvp":
            # forward-over-reverse: the tangent of the generated gradient function, with the
            # seed held constant and the wrt parameters varied
            rt = reverse.ReverseTransform(primal, wrt_names, names, pattern)
            rev = rt.run()
            owned = {rt.bar(n) for n in rt.owned}
            optimize.optimize(rev, owned, scalars(rev), ndims(rev))
            tt = forward.TangentTransform(rev, wrt_names, names)
            out = tt.run()
            out.name = f"{primal.name}_hvp"
            out.n_primal = None  # return everything flat: value, grads, value_dot, grads_dot
            out.n_out = rev.n_primal
            out.tuple_return = True
            optimize.optimize(out, owned | {tt.dot_names[b] for b in owned if b in tt.dot_names}, scalars(out), ndims(out))
            word = "hessian-vector product of"
        elif mode == "grad2":
            # reverse-over-reverse: wrt_names = [inner, *outer] for d/d outer (d f / d inner)
            out = second_order.reverse_over_reverse(primal, wrt_names[0], wrt_names[1:], names, pattern)
            out.single_wrt = single
            _finish_reverse(out, out.owned, scalars(out), ndims(out), out.float_params, carry=False)
            word = "grad of"
        elif mode == "primal":
            out = primal
            word = None
        else:
            raise SourceDiffError(f"mode must be 'reverse' or 'forward', not {mode!r}")
        for g in [out] + extra_functions:
            optimize.drop_stop_gradients(g)
            optimize.prettify_names(g, fixed=tuple(primal.params) if g is out else tuple(g.params))
        if fuse:
            fusion.fuse_elementwise(out, scalars(out), ndims(out), guess_shapes)
        src, extra = codegen.generate([out] + extra_functions, comment_word=word,
                                      keep_tangent_lines=(mode == "forward"))
        return Built(src, extra, out.name, out, recursive=recursive)


def _scalars_only(pattern: tuple, n_params: int) -> bool:
    """Whether `pattern` makes every parameter a scalar: then `grad`'s code has no parameter
    for the output's adjoint (the constant 1.0 instead: one argument less per call)."""
    return len(pattern) >= n_params and all(nd == 0 for nd in pattern[:n_params])


def _finish_reverse(out, owned, scalar_params, param_ndims, float_params, carry: bool = True):
    """The passes after a reverse transform: optimization, maths carried across loop
    iterations (`carry`), shape-only tapes, preallocated tapes of `float_params`' values."""
    optimize.optimize(out, owned, scalar_params, param_ndims)
    if carry:
        commoning.carry_across_iterations(out, NameGen(names_taken(out)))
    tapes.tape_shapes_only(out, scalar_params, param_ndims)
    tapes.preallocate_tapes(out, float_params, scalar_params, param_ndims)
    return out


def _loop_maths_calls(fn) -> int:
    """How many scalar maths calls (sin, exp...) sit inside loops of `fn`."""
    def count(stmts, depth):
        n = 0
        for s in stmts:
            if isinstance(s, (For, While)):
                n += count(s.body, depth + 1)
            else:
                for b in blocks_of(s):
                    n += count(b, depth)
                v = getattr(s, "value", None)
                if depth and isinstance(v, Prim) and v.op in reverse.REMAT_SCALAR:
                    n += 1
        return n
    return count(fn.body, 0)


def _drop_scalar_value(out, scalar_params, param_ndims) -> None:
    """For `grad`: when the output provably is one scalar, do not return it, so the forward
    sweep keeps only what the backward sweep needs (dead-code elimination does the rest)."""
    if out.n_primal != 1:
        return
    value = out.returns[0]
    if isinstance(value, Const):
        scalar = isinstance(value.value, (int, float))
    else:
        scalar = optimize.infer_shapes(out, scalar_params, param_ndims).get(value.id) == optimize.SCALAR
    if scalar:
        out.returns = out.returns[1:]
        out.value_dropped = True


def _subroutine_ir(fn, with_vjp: bool):
    """A recursive user function's IR and, if asked, its vjp `fn_vjp(*params, g) -> (value, grads)`."""
    ir = optimize.simplify_primal(lower_function(fn))
    if not with_vjp:
        return ir, None
    names = NameGen(_all_names(ir))
    rt = reverse.ReverseTransform(copy.deepcopy(ir), list(ir.params), names)
    vjp = rt.run()
    vjp.single_wrt = False
    optimize.optimize(vjp, {rt.bar(n) for n in rt.owned})
    return ir, vjp


def _split_ir(fn, wrt: list, arg_ndims: tuple):
    """A helper's reverse transform cut in two: `fn_fwd(*params) -> (value, residuals)` and
    `fn_bwd(residuals, g) -> grads of wrt`, plus the keys of the helpers it splits in turn.
    `arg_ndims`: per parameter, its ndim where the call site knows it (else None)."""
    ir = optimize.simplify_primal(copy.deepcopy(subroutines.standalone_ir(fn)))
    names = NameGen(_all_names(ir))
    nd = {p: n for p, n in zip(ir.params, arg_ndims) if n is not None}
    scalar = tuple(p for p in ir.params if nd.get(p) == 0)
    nested = subroutines.split_calls(ir, wrt, _split_ir, names, scalar, nd)
    rt = reverse.ReverseTransform(ir, list(wrt), names, tuple(arg_ndims) + (None,), split=True)
    g = rt.run()
    g.single_wrt = False
    _finish_reverse(g, {rt.bar(n) for n in rt.owned}, scalar, nd, list(wrt) + list(rt.seed_params))
    fwd, bwd = subroutines.cut_at_mark(g, len(wrt))
    return fwd, bwd, nested


_all_names = names_taken  # every name a function binds (used by scripts/gen_doc_outputs.py too)


# ----------------------------------------------------------------------------- argument checks
def _bind_args(comp: _Compiled, args, kwargs, extra: int = 0) -> list:
    """Positional argument list in parameter order (defaults filled in)."""
    f, params = comp.f, comp.params
    if kwargs:
        try:
            ba = comp.signature().bind(*args, **kwargs)
        except TypeError as exc:
            raise SourceDiffError(f"{f.__qualname__}(): {exc}") from None
        ba.apply_defaults()
        return [ba.arguments[p] for p in params]
    if len(args) != len(params):
        try:
            ba = comp.signature().bind(*args)
        except TypeError as exc:
            raise SourceDiffError(f"{f.__qualname__}() expects {len(params)} arguments {tuple(params)}"
                                  f"{' plus ' + str(extra) + ' more' if extra else ''}: {exc}") from None
        ba.apply_defaults()
        return [ba.arguments[p] for p in params]
    return list(args)


def _check_float(name, value, fname):
    if type(value) is float or (type(value) is np.ndarray and value.dtype.kind == "f"):
        return  # the common cases, fast
    dt = np.asarray(value).dtype
    if not np.issubdtype(dt, np.floating):
        kind = "an integer" if np.issubdtype(dt, np.integer) or isinstance(value, bool) else f"a {dt} value"
        raise SourceDiffError(
            f"{fname}(): cannot differentiate with respect to {name!r}: it is {kind}.\n"
            f"  Instead: pass a float (e.g. {name}=float(...) or np.asarray(..., dtype=float)).")


# ----------------------------------------------------------------------------- the compiled callables
class _Compiled:
    """A generated function, compiled on first use with the requested backend."""

    def __init__(self, f, wrt_names, single, mode, backend):
        if backend not in BACKENDS:
            raise SourceDiffError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.f = f
        self.wrt_names = wrt_names
        self.single = single
        self.mode = mode
        self.backend_requested = backend
        self.params = _params_of(f)
        self._built: dict = {}
        self._modules: dict = {}
        self._last = None  # the scalar pattern of the last call
        self._wrong_guesses: set = set()  # patterns whose arrays' shapes fusion guessed wrong

    def built_for(self, pattern=(), fuse: bool | None = None) -> Built:
        """The source for one call pattern; fused (loops instead of element-wise array
        expressions) unless it runs with NumPy (backend="python")."""
        if fuse is None:
            fuse = self.backend_requested != "python"
        key = (pattern, fuse, fuse and pattern not in self._wrong_guesses)
        if key not in self._built:
            self._built[key] = build(self.f, self.wrt_names, self.mode, self.single, *key)
        return self._built[key]

    @property
    def built(self) -> Built:
        """What ran last (the NumPy variant when `auto` fell back to the Python backend)."""
        pattern = self._last if self._last is not None else ()
        mod = self._modules.get(pattern)
        fallback = mod is not None and mod.fallback_reason is not None
        return self.built_for(pattern, False if fallback else None)

    @property
    def source(self) -> str:
        return self.built.source

    def primal_function(self, guess: tuple):
        """A built function, to read what the primal returns (the same for every call
        pattern): one already built, else the one for `guess`, the pattern the first call will
        most likely have (so that call finds its source built)."""
        for b in self._built.values():
            return b.function
        return self.built_for(guess).function

    def module(self, pattern):
        if pattern not in self._modules:
            self._modules[pattern] = self._load(pattern, self.backend_requested)
        return self._modules[pattern]

    def _load(self, pattern, backend):
        """The module for `pattern`: the fused source for Numba; under "auto" with the
        NumPy source to fall back on."""
        b = self.built_for(pattern)
        if b.recursive and backend != "python":
            # Numba's cache and recursive functions do not mix safely (crashes seen)
            if backend == "numba":
                raise SourceDiffError(
                    f"{self.f.__qualname__}: recursive helper functions run with the Python backend "
                    "only.\n  Instead: use backend='auto' or 'python', or rewrite the recursion as a loop.")
            backend = "python"
        kw = {}
        if backend == "python":
            b = self.built_for(pattern, fuse=False)
        elif backend == "auto":
            kw["python_fallback"] = lambda: self._numpy_module(pattern)
        if b.extra_globals:
            kw["extra_globals"] = b.extra_globals
        return _backend.load(
            b.source, name=b.entry, backend=backend, entry_points=(b.entry,),
            key_parts=(_source_key(self.f), tuple(self.wrt_names), self.mode,
                       _dependency_key(b.extra_globals)), **kw)

    def _numpy_module(self, pattern):
        modules = self.__dict__.setdefault("_numpy_modules", {})
        if pattern not in modules:
            modules[pattern] = self._load(pattern, "python")
        return modules[pattern]

    def call(self, args):
        pattern = _pattern(args)
        self._last = pattern
        fn = self._entry_cache.get(pattern) if hasattr(self, "_entry_cache") else None
        if fn is None:
            if _wrong_guess_between_arguments(self.built_for(pattern).function, args):
                self._wrong_guesses.add(pattern)  # known before compiling the guessed code
            mod = self.module(pattern)
            fn = mod.functions[self.built_for(pattern).entry]
            self.__dict__.setdefault("_entry_cache", {})[pattern] = fn
        try:
            out = fn(*args)
        except runtime.ShapeGuessFailed:  # generate and compile the code without the guess
            self._wrong_guesses.add(pattern)
            self._modules.pop(pattern, None)
            self._entry_cache.pop(pattern, None)
            return self.call(args)
        return _float32_result(out) if _single_precision(args) else out

    @property
    def backend(self):
        if self._last is None or self._last not in self._modules:
            return None
        return self._modules[self._last].backend_for(self.built.entry)

    def signature(self) -> inspect.Signature:
        """`inspect.signature(f)` (slow), cached while f's defaults are the same objects."""
        f = self.f
        defaults = (getattr(f, "__defaults__", None), getattr(f, "__kwdefaults__", None))
        cached = self.__dict__.get("_signature")
        if cached is None or cached[0] is not defaults[0] or cached[1] is not defaults[1]:
            cached = self._signature = (*defaults, inspect.signature(f))
        return cached[2]

    def prepare(self, args, kwargs, fname, extra=0):
        vals = _bind_args(self, args, kwargs, extra)
        positions = self.__dict__.get("_positions")
        if positions is None:
            positions = self._positions = [self.params.index(w) for w in self.wrt_names]
        for w, k in zip(self.wrt_names, positions):
            _check_float(w, vals[k], fname)
        return list(_backend.normalize_args(vals, positions))


def _wrong_guess_between_arguments(fn, args) -> bool:
    """Whether `fn` checks that two of its parameters have equal shapes (a fusion guess,
    `runtime.same_shape_or_fail`) which these arguments do not have."""
    at = {p: k for k, p in enumerate(fn.params)}
    return any(p in at and w in at and np.shape(args[at[p]]) != np.shape(args[at[w]])
               for p, w in getattr(fn, "shape_checks", ()))


def _single_precision(vals) -> bool:
    """Whether the float arrays among `vals` are all float32 (and there is one)."""
    floats = [v.dtype for v in vals if type(v) is np.ndarray and v.dtype.kind == "f"]
    return bool(floats) and all(d == np.float32 for d in floats)


def _float32_result(x):
    """A result computed from float32 inputs with its float64 arrays cast back to float32:
    Numba promotes float32 arrays combined with float64 scalars to float64, NumPy does not."""
    if type(x) is tuple:
        return tuple(_float32_result(v) for v in x)
    if type(x) is np.ndarray and x.dtype == np.float64:
        return x.astype(np.float32)
    return x


def _pattern(args) -> tuple:
    """Per argument: its ndim (0 for a scalar), or None (not an array or number)."""
    out = []
    for a in args:
        t = type(a)
        if t is np.ndarray:
            out.append(a.ndim)
        elif t is float or t is int or isinstance(a, (int, float, np.number)):
            out.append(0)
        else:
            out.append(None)
    return tuple(out)


def _source_key(f) -> str:
    try:
        src = inspect.getsource(f)
    except (OSError, TypeError):
        src = repr(f)
    return src + repr(getattr(f, "__defaults__", None))


def _dependency_key(extra_globals: dict) -> str:
    """What the user functions called from generated code depend on (the globals they read,
    the functions they call, transitively): compiled code built into Numba's cache embeds
    all of it, so it must be part of the cache key."""
    import hashlib
    import types as _types

    h = hashlib.sha256()
    seen = set()

    def visit(obj, depth):
        if id(obj) in seen or depth > 6:
            return
        seen.add(id(obj))
        py = getattr(obj, "py_func", obj)  # a numba dispatcher: its Python function
        if isinstance(py, _types.FunctionType):
            h.update(_source_key(py).encode())
            for name in py.__code__.co_names:
                if name in py.__globals__:
                    h.update(name.encode())
                    visit(py.__globals__[name], depth + 1)
            for cell in py.__closure__ or ():
                try:
                    visit(cell.cell_contents, depth + 1)
                except ValueError:
                    pass
        elif isinstance(obj, _types.ModuleType):
            h.update(obj.__name__.encode())
        elif isinstance(obj, np.ndarray):
            h.update(str((obj.dtype, obj.shape)).encode() + obj.tobytes())
        elif isinstance(obj, (int, float, complex, bool, str, bytes, type(None), tuple, np.generic)):
            h.update(repr(obj).encode())

    for k in sorted(extra_globals):
        h.update(k.encode())
        visit(extra_globals[k], 0)
    return h.hexdigest()


class _Transformed:
    """What grad(), vjp(), jvp()... return: a callable with `.source` and `.backend`."""

    def __init__(self, compiled: _Compiled, call, name: str):
        self._compiled = compiled
        self._call = call
        self.__name__ = name
        self.__qualname__ = name
        self.__doc__ = f"{name}: generated by sourcediff ({compiled.mode} mode)"

    def __call__(self, /, *args, **kwargs):
        return self._call(*args, **kwargs)

    def _set_call(self, call) -> None:
        """Make calling this object run `call(self, *args, **kwargs)` (a fast path, one Python
        frame: it lives on a class of the object's own), or `self._call` again for None."""
        cls = type(self)
        if "_own_class" not in cls.__dict__:
            if call is None:
                return
            cls = self.__class__ = type(cls.__name__, (cls,), {"_own_class": True})
        if call is None:
            if "__call__" in cls.__dict__:
                del cls.__call__
        elif cls.__dict__.get("__call__") is not call:
            cls.__call__ = call

    @property
    def source(self) -> str:
        return self._compiled.source

    @property
    def backend(self):
        return self._compiled.backend

    def __repr__(self):
        return f"<sourcediff {self.__name__} of {self._compiled.f.__qualname__}>"


def _seed_for(value):
    if isinstance(value, tuple):
        return tuple(_seed_for(v) for v in value)
    return np.ones_like(value) if np.ndim(value) else 1.0


def _copy_aliases(grads, inputs=()):
    """`grads` with a copy of each array that is also an earlier one or one of `inputs` (the
    generated code may return one array for two gradients, or an input it passed through)."""
    if type(grads) is not tuple:
        return grads
    if not inputs and (len(grads) < 2 or (grads[0] is not grads[1] if len(grads) == 2
                                          else len(set(map(id, grads))) == len(grads))):
        return grads  # no two the same object
    seen = [id(x) for x in inputs]
    out = []
    for gr in grads:
        if isinstance(gr, np.ndarray) and id(gr) in seen:
            gr = gr.copy()
        seen.append(id(gr))
        out.append(gr)
    return tuple(out)


def _canonical_key(args) -> tuple | None:
    """A key for arguments that input normalisation leaves as they are, so equal keys mean
    the same compiled version and seeds: floats, ints, and C-contiguous arrays (by ndim and
    dtype).  None for anything else (the general path handles it)."""
    key = []
    for a in args:
        t = type(a)
        if t is np.ndarray:
            if not a.flags.c_contiguous:
                return None
            key.append((a.ndim, a.dtype))
        elif t is float or t is int:
            key.append(t)
        else:
            return None
    return tuple(key)


def _compiled_function(entry):
    """The function an entry point runs once it has run successfully for these argument
    types: the Numba dispatcher itself (skipping the wrapper that handles compile errors and
    fallbacks, which cannot happen again for the same types), else the entry point."""
    module = getattr(entry, "loaded_module", None)
    impl = getattr(module, "_impl", {}).get(entry.__name__) if module is not None else None
    return impl if impl is not None and getattr(module, "_kind", None) == "numba" else entry


def _then_float32(fn):
    def call(*args):
        return _float32_result(fn(*args))
    return call


_FAST_CALL_MAKERS: dict = {}
_FAST_TYPES = (float, int, np.float64)  # the argument types fast calls take
_MISSING = object()


def _fast_call(types: tuple, to_float: tuple, entry, seeds: list, post=None):
    """A `__call__(self, *args, **kwargs)` for exactly `len(types)` positional arguments of
    the scalar types `types`: `entry(*args, *seeds)` with `float(a)` for the arguments
    flagged in `to_float` (what input normalisation does), through `post` if given; anything
    else goes to the general path `self._call`.  Generated per arity: named parameters and
    `type(a) is t` tests are the cheapest checks there are (no tuple or key to build)."""
    n, m = len(types), len(seeds)
    make_key = (to_float, m, post is None)
    make = _FAST_CALL_MAKERS.get(make_key)
    if make is None:
        a = [f"a{i}" for i in range(n)]
        t = [f"t{i}" for i in range(n)]
        s = [f"s{j}" for j in range(m)]
        call = f"entry({', '.join([f'float({x})' if c else x for x, c in zip(a, to_float)] + s)})"
        src = (f"def make(entry, post, {', '.join(t + s)}):\n"
               f"    def __call__(self, {', '.join(x + '=MISSING' for x in a)}, /, *rest, **kwargs):\n"
               f"        if {' and '.join(f'type({x}) is {y}' for x, y in zip(a, t))} and not rest and not kwargs:\n"
               f"            return {call if post is None else f'post({call})'}\n"
               f"        return self._call(*[x for x in ({', '.join(a)},) if x is not MISSING], *rest, **kwargs)\n"
               f"    return __call__\n")
        namespace = {"MISSING": _MISSING}
        exec(compile(src, "<sourcediff fast call>", "exec"), namespace)  # noqa: S102 - no user text
        make = _FAST_CALL_MAKERS[make_key] = namespace["make"]
    return make(entry, post, *types, *seeds)


def _native_call(comp: _Compiled, entry, args: tuple, general):
    """For float arguments only: a `staticmethod` of a Numba dispatcher with `entry`'s
    compiled code that hands any other call to `general` (`backend.native_float_call`), so
    a call costs no Python frame at all.  Only where Numba's folding of keyword arguments
    means what binding to `f` means: the generated function has `f`'s parameters, in order,
    and neither has defaults.  (A keyword mistake is then refused by Numba: a TypeError.)"""
    if not all(type(a) is float or type(a) is np.float64 for a in args):
        return None  # ints are converted to float first: Numba would not match them
    py_func = getattr(entry, "py_func", None)
    if py_func is None or py_func.__defaults__ or py_func.__kwdefaults__:
        return None
    params = list(comp.signature().parameters.values())
    if (len(params) != len(args) or py_func.__code__.co_varnames[:py_func.__code__.co_argcount]
            != tuple(p.name for p in params)
            or any(p.kind is not p.POSITIONAL_OR_KEYWORD or p.default is not p.empty for p in params)):
        return None
    native = _backend.native_float_call(entry, general)
    return staticmethod(native) if native is not None else None


def _reverse_call(comp: _Compiled, fname: str, want_value: bool, name: str) -> _Transformed:
    """The `_Transformed` of grad / value_and_grad.  Calls go through a cache: canonical
    argument key -> (entry point, seeds, pattern, value dropped?, fast call): later calls
    with arguments of the same kinds skip binding, checks and normalisation (they would
    change nothing).  After a call with scalars only (float, int, np.float64), calls with the
    same types skip even the cache (`_fast_call`, or for grad of floats `_native_call`)
    until a call with other arguments."""
    fast: dict = {}

    def finish(result, value_dropped=False):
        if value_dropped:  # the output was proved scalar when generating the code
            return _copy_aliases(result) if type(result) is tuple else result
        value, grads = result
        if comp._n_out != 1 or (type(value) is not float and np.ndim(value) != 0):
            raise SourceDiffError(
                f"{fname}() needs {comp.f.__qualname__}() to return one scalar, but it returned "
                f"{'a tuple' if comp._n_out != 1 else 'an array of shape ' + str(np.shape(value))}.\n"
                "  Instead: reduce the output to a scalar (np.sum, np.mean), or use vjp / jacobian.")
        grads = _copy_aliases(grads)
        return (value, grads) if want_value else grads

    def run(*args, **kwargs):
        out._set_call(None)  # a fast call for other types would not update comp._last
        key = None if kwargs else _canonical_key(args)
        hit = fast.get(key) if key is not None else None
        if hit is not None:
            entry, seeds, comp._last, value_dropped, call = hit
            try:
                result = entry(*args, *seeds)
            except runtime.ShapeGuessFailed:  # the general path regenerates the code
                del fast[key]
                hit = None
        if hit is None:
            vals = comp.prepare(args, kwargs, fname)
            pattern = _pattern(vals)
            scalars_only = comp.mode == "grad" and _scalars_only(pattern, len(vals))
            n_out = comp.__dict__.get("_n_out")
            if n_out is None:
                guess = pattern if scalars_only else pattern + (0,)
                n_out = comp._n_out = comp.primal_function(guess).n_primal
            single_precision = _single_precision(vals)
            if scalars_only:
                seeds = []  # the generated code seeds with the constant 1.0
            else:
                seeds = [np.float32(1.0) if single_precision else 1.0] * n_out
            result = comp.call(vals + seeds)
            value_dropped = getattr(comp.built.function, "value_dropped", False)
            call = None
            if not kwargs and len(vals) == len(args):
                entry = _compiled_function(comp._entry_cache[comp._last])
                same = [v is a for v, a in zip(vals, args)]
                if all(type(a) in _FAST_TYPES and (k or (type(a) is np.float64 and type(v) is float))
                       for v, a, k in zip(vals, args, same)):
                    call = value_dropped and not seeds and _native_call(comp, entry, args, run)
                    if not call:
                        call = _fast_call(tuple(map(type, args)), tuple(not k for k in same), entry,
                                          seeds, None if value_dropped else finish)
                if key is not None and all(same):
                    fast[key] = (_then_float32(entry) if single_precision else entry, seeds, comp._last,
                                 value_dropped, call)
        result = finish(result, value_dropped)
        out._set_call(call)
        return result

    out = _Transformed(comp, run, name)  # run switches its calls (`_set_call`)
    return out


def grad(f, wrt=0, *, mode: str = "reverse", backend: str = "auto"):
    """Gradient of scalar-valued `f` with respect to the argument(s) `wrt`.

    `f` may itself be `grad(g, x)` with `x` a scalar argument: `grad(grad(g, x), y)` is the
    second derivative d/dy (dg/dx), computed exactly.  `mode="reverse"` (the default)
    differentiates the generated gradient code in reverse mode again (reverse-over-reverse);
    if building that code fails (a runtime helper without an adjoint rule) it falls back
    automatically to forward-over-reverse, which is exact too (`.method` says which ran).  `mode="forward"`
    always uses forward-over-reverse (the tangent of the gradient code, as `hvp`)."""
    if isinstance(f, _Transformed):
        _check_mode(mode)
        return _grad_of_grad(f, wrt, mode, backend)
    names, single = resolve_wrt(f, wrt)
    if mode == "forward":
        return forward_grad(f, names, single, backend)
    _check_mode(mode)
    comp = _Compiled(f, names, single, "grad", backend)
    out = _reverse_call(comp, "grad", False, f"grad_{f.__name__}")
    out.kind = "grad"
    return out


class _SecondOrder(_Transformed):
    """What `grad(grad(f, x), y)` returns.  `.method` says how the last call computed it:
    "reverse-over-reverse" or "forward-over-reverse"; `.source` shows the second-order code
    (reverse-over-reverse when available)."""

    def __init__(self, ror: _Compiled, hvp_t: _Transformed, call, name: str):
        super().__init__(ror, call, name)
        self._hvp = hvp_t
        self.method = None
        self.kind = "grad2"

    def _current(self) -> _Compiled:
        return self._hvp._compiled if self.method == "forward-over-reverse" else self._compiled

    @property
    def source(self) -> str:
        if self.method is None:
            try:
                return self._compiled.source
            except Exception:  # noqa: BLE001 - not expressible in reverse-over-reverse
                return self._hvp.source
        return self._current().source

    @property
    def backend(self):
        return self._current().backend


def _grad_of_grad(g, wrt, mode, backend):
    comp = g._compiled
    if getattr(g, "kind", None) != "grad" or not comp.single:
        raise SourceDiffError(
            f"grad() of {g.__name__}: only the gradient of a scalar function with respect to one argument "
            "can be differentiated again.\n  Instead: use hessian(f) or hvp(f) for second derivatives.")
    f = comp.f
    inner = comp.wrt_names[0]
    outer, single = resolve_wrt(f, wrt)
    both = [inner] + [n for n in outer if n != inner]
    h = hvp(f, tuple(both), backend=backend)
    ror = _Compiled(f, [inner] + list(outer), single, "grad2", backend)
    methods: dict = {}  # argument pattern -> method

    def forward_over_reverse(vals):
        v = tuple(1.0 if n == inner else np.zeros_like(vals[comp.params.index(n)], dtype=float)
                  if np.ndim(vals[comp.params.index(n)]) else 0.0 for n in both)
        hv = h(*vals, v)
        parts = [hv[both.index(n)] for n in outer]
        return parts[0] if single else tuple(parts)

    def run(*args, **kwargs):
        vals = ror.prepare(args, kwargs, "grad")
        x = vals[comp.params.index(inner)]
        if np.ndim(x) != 0:
            raise SourceDiffError(
                f"grad(grad({f.__name__}, {inner!r})): the inner gradient is an array (the argument {inner!r} "
                f"has shape {np.shape(x)}), so it has no gradient.\n  Instead: use hessian or hvp.")
        seeds = [1.0, 1.0]  # of f's value, then of the inner gradient
        pattern = _pattern(vals + seeds)
        method = methods.get(pattern)
        if method is None:
            method = "forward-over-reverse"
            if mode == "reverse":
                try:
                    ror.built_for(pattern)
                    method = "reverse-over-reverse"
                except Exception:  # noqa: BLE001 - a construct it does not handle: the exact fallback
                    pass
            methods[pattern] = method
        out.method = method
        if method == "forward-over-reverse":
            return forward_over_reverse(vals)
        res = ror.call(vals + seeds)
        if ror.built_for(pattern).function.n_primal:  # (ndim of f's value, derivatives)
            ndim, res = res
            if ndim != 0:
                raise SourceDiffError(f"grad(grad({f.__name__})) needs {f.__qualname__}() to return one scalar, "
                                      f"but it returned an array of {ndim} dimensions")
        if single:
            return res.copy() if isinstance(res, np.ndarray) else float(res)
        return tuple(r.copy() if isinstance(r, np.ndarray) else float(r) for r in res)
    out = _SecondOrder(ror, h, run, f"grad_{g.__name__}")
    return out


def value_and_grad(f, wrt=0, *, mode: str = "reverse", backend: str = "auto"):
    """`(f(*args), grad)` in one pass."""
    names, single = resolve_wrt(f, wrt)
    if mode == "forward":
        g = forward_grad(f, names, single, backend, want_value=True)
        return g
    _check_mode(mode)
    comp = _Compiled(f, names, single, "reverse", backend)
    return _reverse_call(comp, "value_and_grad", True, f"value_and_grad_{f.__name__}")


def vjp(f, wrt=0, *, backend: str = "auto"):
    """`vf(*args, cotangent) -> (f(*args), cotangent pulled back to the wrt argument(s))`."""
    names, single = resolve_wrt(f, wrt)
    comp = _Compiled(f, names, single, "reverse", backend)

    def run(*args, **kwargs):
        if not args:
            raise SourceDiffError("vjp: pass the arguments of the function, then the cotangent")
        *fargs, cot = args
        vals = comp.prepare(tuple(fargs), kwargs, "vjp", extra=1)
        function = comp.primal_function(_pattern(vals) + _pattern(cot if type(cot) is tuple else (cot,)))
        n_out, tuple_out = function.n_primal, function.primal_tuple
        cots = list(cot) if tuple_out else [cot]
        if len(cots) != n_out:
            raise SourceDiffError(f"vjp: the function returns {n_out} values; pass a tuple of {n_out} cotangents")
        cots = [_as_float(c) for c in cots]
        try:
            value, grads = comp.call(vals + cots)
        except Exception:
            primal = _run_on_copies(comp.f, vals)
            _check_cotangent_shapes(primal if tuple_out else (primal,), cots)
            raise
        _check_cotangent_shapes(value if tuple_out else (value,), cots)
        return value, _copy_aliases(grads, cots)
    return _Transformed(comp, run, f"vjp_{f.__name__}")


def _as_float(c):
    if isinstance(c, (int, float, np.number)):
        return float(c)
    return np.ascontiguousarray(c, dtype=np.result_type(np.asarray(c).dtype, np.float32) if np.asarray(c).dtype == np.float32 else np.float64)


def _check_cotangent_shapes(values, cots):
    for v, c in zip(values, cots):
        if np.shape(v) != np.shape(c):
            raise SourceDiffError(f"vjp: the cotangent has shape {np.shape(c)} but the output has shape "
                                  f"{np.shape(v)}; pass a cotangent shaped like the output")


def _check_mode(mode):
    if mode not in MODES:
        raise SourceDiffError(f"mode must be one of {MODES}, not {mode!r}")


# ----------------------------------------------------------------------------- forward mode
def _args_and_directions(comp: _Compiled, fname: str, what: str, args, kwargs):
    """Split `(*function arguments, direction)` and check one direction per wrt argument,
    shaped like it (a tuple of them for a tuple wrt)."""
    if not args:
        raise SourceDiffError(f"{fname}: pass the arguments of the function, then the {what}")
    *fargs, direction = args
    vals = comp.prepare(tuple(fargs), kwargs, fname, extra=1)
    ds = [direction] if comp.single else list(direction) if isinstance(direction, (tuple, list)) else None
    if ds is None or len(ds) != len(comp.wrt_names):
        raise SourceDiffError(f"{fname}: pass one {what} per wrt argument ({len(comp.wrt_names)}), as a tuple")
    out = []
    for w, d in zip(comp.wrt_names, ds):
        x = vals[comp.params.index(w)]
        if np.shape(d) != np.shape(x):
            raise SourceDiffError(f"{fname}: the {what} for {w!r} has shape {np.shape(d)}, "
                                  f"but the argument has shape {np.shape(x)}")
        out.append(_like(d, x))
    return vals, out


def _forward_call(comp: _Compiled, fname: str):
    def run(*args, **kwargs):
        vals, tans = _args_and_directions(comp, fname, "tangent", args, kwargs)
        return comp.call(vals + tans)
    return run


def _like(t, x):
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(t, dtype=x.dtype)
    return float(t)


def jvp(f, wrt=0, *, backend: str = "auto"):
    """`jf(*args, tangent) -> (f(*args), directional derivative)`."""
    names, single = resolve_wrt(f, wrt)
    comp = _Compiled(f, names, single, "forward", backend)
    return _Transformed(comp, _forward_call(comp, "jvp"), f"jvp_{f.__name__}")


def forward_grad(f, names, single, backend, want_value=False):
    """Gradient by forward mode: one tangent pass per input element."""
    comp = _Compiled(f, names, single, "forward", backend)
    call = _forward_call(comp, "grad")

    def run(*args, **kwargs):
        vals = comp.prepare(args, kwargs, "grad")
        positions = [comp.params.index(w) for w in names]
        grads = []
        value = None
        for j, k in enumerate(positions):
            x = vals[k]
            g = np.zeros(np.shape(x), dtype=np.result_type(x, np.float32) if np.asarray(x).dtype == np.float32 else float)
            for idx in np.ndindex(*np.shape(x)):
                tans = [np.zeros_like(vals[p]) if np.ndim(vals[p]) else 0.0 for p in positions]
                e = np.zeros(np.shape(x))
                e[idx] = 1.0
                tans[j] = e if np.ndim(x) else 1.0
                value, d = call(*vals, tans[0] if single else tuple(tans))
                if np.ndim(d) != 0:
                    raise SourceDiffError("grad needs a scalar output; use jacobian for array outputs")
                g[idx] = d
            grads.append(g if np.ndim(x) else float(g))
        out = grads[0] if single else tuple(grads)
        return (value, out) if want_value else out
    return _Transformed(comp, run, f"grad_{f.__name__}")


# ----------------------------------------------------------------------------- Jacobians
def _basis(shape):
    """Unit tangents/cotangents e_idx for every index of `shape` (a float for a scalar)."""
    for idx in np.ndindex(*shape):
        if not shape:
            yield idx, 1.0
        else:
            e = np.zeros(shape)
            e[idx] = 1.0
            yield idx, e


def _zero(x):
    return np.zeros(np.shape(x)) if np.ndim(x) else 0.0


def _result(arr):
    return arr if np.ndim(arr) else float(arr)


def _run_on_copies(f, vals):
    """`f(*vals)` with its array arguments copied: `f` may write into them, and the
    transformations that run next must see the caller's values."""
    return f(*[v.copy() if isinstance(v, np.ndarray) else v for v in vals])


def jacobian(f, wrt=0, *, mode: str = "auto", backend: str = "auto"):
    """The full Jacobian of `f`: shape `out.shape + arg.shape` (a tuple of them for a tuple
    `wrt`).  "forward": one tangent pass per input element; "reverse": one adjoint pass per
    output element; "auto": forward when the inputs are no larger than the output."""
    names, single = resolve_wrt(f, wrt)
    if mode not in ("auto",) + MODES:
        raise SourceDiffError(f"mode must be one of {('auto',) + MODES}, not {mode!r}")
    fwd = _Compiled(f, names, single, "forward", backend)
    rev = _Compiled(f, names, single, "reverse", backend)
    jcall = _forward_call(fwd, "jacobian")
    state = {"comp": fwd}

    def run(*args, **kwargs):
        vals = fwd.prepare(args, kwargs, "jacobian")
        positions = [fwd.params.index(w) for w in names]
        xs = [vals[k] for k in positions]
        m = mode
        out = None
        if m == "auto":
            out = _run_on_copies(f, vals)
            if isinstance(out, tuple):
                raise SourceDiffError("jacobian needs a function with one (array or scalar) output")
            m = "forward" if sum(int(np.size(x)) for x in xs) <= int(np.size(out)) else "reverse"
        if m == "forward":
            state["comp"] = fwd
            jacs = []
            for j, x in enumerate(xs):
                J = None
                for idx, e in _basis(np.shape(x)):
                    tans = [_zero(y) for y in xs]
                    tans[j] = e
                    value, d = jcall(*vals, tans[0] if single else tuple(tans))
                    if isinstance(d, tuple) and len(d) == 1:  # one directional derivative
                        d = d[0]
                    if isinstance(value, tuple):
                        raise SourceDiffError("jacobian needs a function with one (array or scalar) output")
                    if J is None:
                        J = np.zeros(np.shape(value) + np.shape(x))
                    J[(Ellipsis,) + idx] = d
                if J is None:  # an empty argument
                    J = np.zeros(np.shape(_run_on_copies(f, vals)) + np.shape(x))
                jacs.append(_result(J))
        else:
            state["comp"] = rev
            if out is None:
                out = _run_on_copies(f, vals)
            if isinstance(out, tuple):
                raise SourceDiffError("jacobian needs a function with one (array or scalar) output")
            oshape = np.shape(out)
            Js = [np.zeros(oshape + np.shape(x)) for x in xs]
            for idx, e in _basis(oshape):
                _, grads = rev.call(vals + [e])
                grads = (grads,) if single else grads
                for J, g in zip(Js, grads):
                    J[idx] = g
            jacs = [_result(J) for J in Js]
        return jacs[0] if single else tuple(jacs)

    t = _Transformed(fwd if mode != "reverse" else rev, run, f"jacobian_{f.__name__}")
    return t


# ----------------------------------------------------------------------------- Hessians
def _hvp_call(comp: _Compiled, fname: str):
    def run(*args, **kwargs):
        vals, vs_n = _args_and_directions(comp, fname, "vector", args, kwargs)
        n_out = comp.built_for(_pattern(vals + [1.0] + vs_n)).function.n_out
        res = comp.call(vals + [1.0] * n_out + vs_n)
        n_w = len(comp.wrt_names)
        value = res[0]
        if n_out != 1 or np.ndim(value) != 0:
            raise SourceDiffError(f"{fname}() needs {comp.f.__qualname__}() to return one scalar")
        # returns: value, grads..., value_dot, grads_dot...
        hv = list(res[2 + n_w:2 + 2 * n_w])
        hv = [h.copy() if isinstance(h, np.ndarray) else float(h) for h in hv]
        return hv[0] if comp.single else tuple(hv)
    return run


def hvp(f, wrt=0, *, backend: str = "auto"):
    """`h(*args, v)` -> the Hessian of scalar `f` times `v` (forward-over-reverse: the
    tangent of the generated gradient code; the Hessian is never formed)."""
    names, single = resolve_wrt(f, wrt)
    comp = _Compiled(f, names, single, "hvp", backend)
    return _Transformed(comp, _hvp_call(comp, "hvp"), f"hvp_{f.__name__}")


def hessian(f, wrt=0, *, backend: str = "auto"):
    """The Hessian of scalar `f`: shape `arg.shape + arg.shape` (for a tuple `wrt`, a tuple of
    tuples of blocks `arg_i.shape + arg_j.shape`), one Hessian-vector product per element."""
    names, single = resolve_wrt(f, wrt)
    comp = _Compiled(f, names, single, "hvp", backend)
    call = _hvp_call(comp, "hessian")

    def run(*args, **kwargs):
        vals = comp.prepare(args, kwargs, "hessian")
        positions = [comp.params.index(w) for w in names]
        xs = [vals[k] for k in positions]
        blocks = [[np.zeros(np.shape(xi) + np.shape(xj)) for xj in xs] for xi in xs]
        for j, x in enumerate(xs):
            for idx, e in _basis(np.shape(x)):
                vs = [_zero(y) for y in xs]
                vs[j] = e
                hv = call(*vals, vs[0] if single else tuple(vs))
                hv = (hv,) if single else hv
                for i, h in enumerate(hv):
                    # column idx of block (i, j)
                    blocks[i][j][(Ellipsis,) + idx] = h
        if single:
            return _result(blocks[0][0])
        return tuple(tuple(_result(b) for b in row) for row in blocks)
    return _Transformed(comp, run, f"hessian_{f.__name__}")


# ----------------------------------------------------------------------------- the decorator
class Differentiable:
    """A function with its derivatives attached: `f.grad(...)`, `f.source("reverse")`."""

    def __init__(self, f, wrt=0, backend="auto"):
        if backend not in BACKENDS:
            raise SourceDiffError(f"backend must be one of {BACKENDS}, not {backend!r}")
        functools.update_wrapper(self, f)
        self.fn = f
        self.wrt = wrt
        self.backend_requested = backend
        self._cache = {}
        self._primal = None
        self._primal_failed = False

    def __call__(self, *args, **kwargs):
        """The function's value: compiled with Numba unless backend="python"."""
        if self.backend_requested == "python" or self._primal_failed:
            return self.fn(*args, **kwargs)
        if self._primal is None:
            self._primal = _Compiled(self.fn, [], True, "primal", self.backend_requested)
        try:
            vals = self._primal.prepare(args, kwargs, self.fn.__name__)
            return self._primal.call(vals)
        except SourceDiffError:
            if self.backend_requested == "numba":
                raise
            self._primal_failed = True  # not compilable: the original function it is
            return self.fn(*args, **kwargs)

    @property
    def backend(self):
        """What ran for the last call of the function itself ("numba" or "python")."""
        if self.backend_requested == "python" or self._primal_failed or self._primal is None:
            return "python" if self._primal_failed or self.backend_requested == "python" else None
        return self._primal.backend

    def _free_objects(self) -> list:
        """The objects the function's global names and closure cells hold now."""
        fn = self.fn
        g = getattr(fn, "__globals__", {})
        out = [g.get(n) for n in getattr(getattr(fn, "__code__", None), "co_names", ())]
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                out.append(cell.cell_contents)
            except ValueError:  # an empty cell
                out.append(None)
        return out

    def _get(self, kind):
        now = self._free_objects()
        seen = self._cache.get("free objects")
        if seen is None or len(seen) != len(now) or any(a is not b for a, b in zip(now, seen)):
            self._cache = {"free objects": now}  # a global was rebound: build afresh
        if kind not in self._cache:
            maker = {"grad": grad, "value_and_grad": value_and_grad, "vjp": vjp, "jvp": jvp}[kind]
            self._cache[kind] = maker(self.fn, self.wrt, backend=self.backend_requested)
        return self._cache[kind]

    def grad(self, *args, **kwargs):
        return self._get("grad")(*args, **kwargs)

    def value_and_grad(self, *args, **kwargs):
        return self._get("value_and_grad")(*args, **kwargs)

    def vjp(self, *args, **kwargs):
        return self._get("vjp")(*args, **kwargs)

    def jvp(self, *args, **kwargs):
        return self._get("jvp")(*args, **kwargs)

    def source(self, mode: str = "reverse") -> str:
        return show(self.fn, self.wrt, mode)


def differentiate(f=None, *, wrt=0, backend: str = "auto"):
    """Decorator: `@differentiate` or `@differentiate(wrt=("W", "V"), backend="numba")`."""
    if f is None:
        return lambda fn: Differentiable(fn, wrt, backend)
    return Differentiable(f, wrt, backend)


def show(f, wrt=0, mode: str = "reverse") -> str:
    """The generated source of `f`'s derivative, as readable Python."""
    if isinstance(f, Differentiable):
        f = f.fn
    _check_mode(mode)
    names, single = resolve_wrt(f, wrt)
    return build(f, names, mode, single).source


def show_ir(f) -> str:
    """The IR of `f` as text (for debugging)."""
    return format_function(lowered(f))


# ----------------------------------------------------------------------------- checking
def check_grad(f, *args, wrt=0, eps: float = 1e-6, backend: str = "auto") -> float:
    """Max relative error between the generated gradient and central finite differences."""
    if isinstance(f, Differentiable):
        f = f.fn
    names, single = resolve_wrt(f, wrt)
    g = grad(f, tuple(names), backend=backend)(*args)
    params = _params_of(f)
    args = [np.array(a, dtype=float) if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating) else a
            for a in args]
    worst = 0.0
    for name, gk in zip(names, g):
        fd = finite_difference_grad(f, args, params.index(name), eps)
        err = max_relative_error(gk, fd)
        worst = max(worst, float(err))
    return worst


def supported() -> list:
    """`(qualified name, has_adjoint, has_tangent)` for every primitive with rules."""
    out = []
    for r in REGISTRY.rules():
        if r.nondiff:
            out.append((r.name, True, True))
        else:
            out.append((r.name, bool(r.adjoint or r.adjoint_inplace), bool(r.tangent)))
    return sorted(set(out))
