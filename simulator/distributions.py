"""Random quantities of a scenario: durations, sampled variables, probabilities.

A spec is plain data so it reads well in YAML::

    PT5M                                  # fixed (ISO-8601 duration) or a number (seconds / a value)
    {exponential: PT10M}                  # mean
    {normal: {mean: PT1H, sd: PT15M}}     # truncated at 0 (redrawn)
    {lognormal: {mean: PT1H, sd: PT30M}}  # mean and sd of the duration itself, not of its log
    {triangular: [PT5M, PT10M, PT30M]}    # low, mode, high
    {uniform: [0, 100]}
    {empirical: [PT3M, PT4M, PT9M]}       # drawn with equal weights
    {bernoulli: 0.8}                      # True with probability 0.8
    {choice: {gold: 0.2, silver: 0.8}}    # a categorical value

Samplers draw in batches from their own numpy Generator: a scalar numpy call costs about a
microsecond, a list pop a tenth of that, and the simulator samples once per task.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import TimerSpecError
from engine.model.timers import parse_duration

BATCH = 512
KINDS = ("fixed", "exponential", "normal", "lognormal", "triangular", "uniform", "empirical", "bernoulli",
         "choice", "gamma")


class DistributionError(ValueError):
    """A spec that cannot be sampled; the message says which part is wrong (pydantic adds the place)."""


def quantity(value: Any, what: str = "value") -> float:
    """A number, or an ISO-8601 duration in seconds."""
    if isinstance(value, bool):
        raise DistributionError(f"{what} must be a number or an ISO-8601 duration, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise DistributionError(f"{what} must be finite, got {value!r}")
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value).total_seconds()
        except TimerSpecError as exc:
            raise DistributionError(f"{what}: {exc}") from None
    raise DistributionError(f"{what} must be a number or an ISO-8601 duration such as 'PT5M', got {value!r}")


def _params(kind: str, arg: Any, names: tuple[str, ...]) -> list[float]:
    """Accept ``[a, b]`` or ``{name: a, ...}`` (or a single value when one name)."""
    if isinstance(arg, dict):
        unknown = sorted(set(arg) - set(names))
        missing = [n for n in names if n not in arg]
        if unknown or missing:
            raise DistributionError(f"{kind} takes {', '.join(names)}"
                                    + (f"; unknown {unknown}" if unknown else "")
                                    + (f"; missing {missing}" if missing else ""))
        return [quantity(arg[n], f"{kind}.{n}") for n in names]
    if isinstance(arg, list | tuple):
        if len(arg) != len(names):
            raise DistributionError(f"{kind} takes {len(names)} values ({', '.join(names)}), got {len(arg)}")
        return [quantity(v, f"{kind}.{n}") for v, n in zip(arg, names, strict=True)]
    if len(names) == 1:
        return [quantity(arg, f"{kind}.{names[0]}")]
    raise DistributionError(f"{kind} takes {', '.join(names)} as a list or a mapping, got {arg!r}")


class Distribution:
    """A validated spec; :meth:`sampler` binds it to a random stream."""

    __slots__ = ("arg", "kind", "mean", "params")

    def __init__(self, spec: Any, values: bool = False) -> None:
        """``values=True`` (sampled variables): a plain scalar is a constant of any type, kept as is;
        otherwise (durations) it is a fixed number of seconds or an ISO-8601 duration."""
        if isinstance(spec, Distribution):
            self.kind, self.params, self.arg, self.mean = spec.kind, spec.params, spec.arg, spec.mean
            return
        if not isinstance(spec, dict):
            if values or isinstance(spec, bool):
                self.kind, self.arg, self.params = "constant", spec, []
                self.mean = float(spec) if isinstance(spec, int | float) else float("nan")
                return
            self.kind, self.arg = "fixed", spec
            self.params = [quantity(spec, "fixed")]
            self.mean = self.params[0]
            return
        if len(spec) != 1:
            raise DistributionError(f"a distribution is one of {', '.join(KINDS)} with its parameters, "
                                    f"e.g. {{exponential: PT10M}}; got keys {sorted(spec)}")
        ((kind, arg),) = spec.items()
        if kind not in KINDS and kind != "value":
            raise DistributionError(f"unknown distribution {kind!r} (known: {', '.join(KINDS)})")
        self.kind, self.arg, self.params = kind, arg, []
        self.mean = self._check()

    def _check(self) -> float:
        kind, arg = self.kind, self.arg
        if kind == "value":
            self.kind = "constant"
            return float(arg) if isinstance(arg, int | float) and not isinstance(arg, bool) else float("nan")
        if kind == "fixed":
            self.params = [quantity(arg, kind)]
            return self.params[0]
        if kind == "exponential":
            (mean,) = self.params = _params(kind, arg, ("mean",))
            _positive(kind, mean=mean)
            return mean
        if kind in ("normal", "lognormal"):
            mean, sd = self.params = _params(kind, arg, ("mean", "sd"))
            if sd < 0:
                raise DistributionError(f"{kind}.sd must be >= 0, got {sd}")
            if kind == "lognormal":
                _positive(kind, mean=mean)
            return mean
        if kind == "gamma":
            mean, sd = self.params = _params(kind, arg, ("mean", "sd"))
            _positive(kind, mean=mean, sd=sd)
            return mean
        if kind == "triangular":
            low, mode, high = self.params = _params(kind, arg, ("low", "mode", "high"))
            if not low <= mode <= high or low == high:
                raise DistributionError(f"triangular needs low <= mode <= high and low < high, got {self.params}")
            return (low + mode + high) / 3
        if kind == "uniform":
            low, high = self.params = _params(kind, arg, ("low", "high"))
            if not low < high:
                raise DistributionError(f"uniform needs low < high, got {self.params}")
            return (low + high) / 2
        if kind == "empirical":
            if not isinstance(arg, list | tuple) or not arg:
                raise DistributionError("empirical needs a non-empty list of observed values")
            self.params = [quantity(v, f"empirical[{i}]") for i, v in enumerate(arg)]
            return float(np.mean(self.params))
        if kind == "bernoulli":
            p = quantity(arg, "bernoulli")
            if not 0 <= p <= 1:
                raise DistributionError(f"bernoulli needs a probability between 0 and 1, got {p}")
            self.params = [p]
            return p
        if kind == "choice":
            if not isinstance(arg, dict) or not arg:
                raise DistributionError("choice needs a mapping of value -> probability, e.g. {gold: 0.2, silver: 0.8}")
            probs = [quantity(v, f"choice.{k}") for k, v in arg.items()]
            if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
                raise DistributionError(f"choice probabilities must be >= 0 and add up to 1, got {sum(probs):g}")
            self.params = probs
            return float("nan")
        raise DistributionError(f"unknown distribution {kind!r}")  # pragma: no cover

    def to_data(self) -> Any:
        if self.kind == "constant":
            return {"value": self.arg}
        return {self.kind: self.arg}

    def __repr__(self) -> str:
        return f"Distribution({self.to_data()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distribution) and self.to_data() == other.to_data()

    def __hash__(self) -> int:
        return hash(repr(self.to_data()))

    def sampler(self, rng: np.random.Generator) -> Callable[[], Any]:
        """A no-argument function returning the next draw (a float; bool or a value for bernoulli/choice). A
        bound ``__call__``, not the object: calling a bound method is cheaper than calling an instance."""
        kind, p = self.kind, self.params
        if kind == "fixed":
            value = p[0]
            return lambda: value
        if kind == "constant":
            const = self.arg
            return lambda: const
        if kind == "empirical":
            values = np.asarray(p)
            return _Batched(lambda n: values[rng.integers(0, len(values), n)]).__call__
        if kind == "choice":
            labels = list(self.arg)
            probs = np.asarray(p) / sum(p)
            return _Batched(lambda n: [labels[i] for i in rng.choice(len(labels), n, p=probs)]).__call__
        if kind == "bernoulli":
            prob = p[0]
            return _Batched(lambda n: rng.random(n) < prob).__call__
        return _Batched(_drawer(kind, p, rng)).__call__


def _positive(kind: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise DistributionError(f"{kind}.{name} must be > 0, got {value}")


def _drawer(kind: str, p: list[float], rng: np.random.Generator) -> Callable[[int], Any]:
    if kind == "exponential":
        return lambda n: rng.exponential(p[0], n)
    if kind == "uniform":
        return lambda n: rng.uniform(p[0], p[1], n)
    if kind == "triangular":
        return lambda n: rng.triangular(p[0], p[1], p[2], n)
    if kind == "gamma":
        shape = (p[0] / p[1]) ** 2
        scale = p[1] ** 2 / p[0]
        return lambda n: rng.gamma(shape, scale, n)
    if kind == "lognormal":
        mean, sd = p
        sigma2 = math.log(1 + (sd / mean) ** 2)
        mu = math.log(mean) - sigma2 / 2
        return lambda n: rng.lognormal(mu, math.sqrt(sigma2), n)
    if kind == "normal":
        mean, sd = p

        def draw(n: int) -> np.ndarray:
            """Truncated at 0 by redrawing, so the shape above 0 is kept."""
            out = rng.normal(mean, sd, n)
            bad = out < 0
            tries = 0
            while bad.any():
                tries += 1
                if tries > 100:  # almost all mass below 0: clip rather than loop
                    out[bad] = 0.0
                    break
                out[bad] = rng.normal(mean, sd, int(bad.sum()))
                bad = out < 0
            return out

        return draw
    raise DistributionError(f"unknown distribution {kind!r}")  # pragma: no cover


class _Batched:
    """Draw ``BATCH`` values at a time; calling returns the next one."""

    __slots__ = ("_buf", "_draw", "_i")

    def __init__(self, draw: Callable[[int], Any]) -> None:
        self._draw = draw
        self._buf: list[Any] = []
        self._i = 0

    def __call__(self) -> Any:
        i = self._i
        if i >= len(self._buf):
            batch = self._draw(BATCH)
            self._buf = batch.tolist() if isinstance(batch, np.ndarray) else list(batch)
            i = 0
        self._i = i + 1
        return self._buf[i]
