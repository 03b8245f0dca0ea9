"""What an action holds: ``event``'s read-only values, and the JSON that api methods take.

The event arrives as JSON (RFC 8259) and an action hands values back to api methods, so a value
taken from ``event`` must be usable as the value it looks like, and anything an api method
records must be JSON, checked where the action calls it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

READ_ONLY = "event is read-only: change things through api"


class ReadOnlyDict(dict[str, Any]):
    """A JSON object as an action sees it in ``event`` (or an ``api.http`` reply): a real dict
    that refuses changes.

    Being a dict, it is the value it looks like: ``dict()``, ``**``, ``json.dumps``, ``==``,
    ``.items()``, ``len``, ``in`` and every api method take it as the JSON object it is. A key
    also reads as an attribute (``event.user.email``), a missing one as ``None`` (where Auth0's
    JavaScript has ``undefined``); a dict method wins over a key of the same name
    (``event.request.query["keys"]``). Nested objects and arrays are read-only too; ``dict(x)``,
    ``x | {...}``, ``x.copy()`` and ``copy.deepcopy(x)`` give changeable copies, ``to_dict()``
    a deep one. Read-only is a convenience, not a boundary: the event is this process's copy.
    """

    __slots__ = ()

    def __init__(self, data: Any = ()) -> None:
        if len(self):
            raise TypeError(READ_ONLY)
        dict.__init__(self, ((key, freeze(value)) for key, value in dict(data).items()))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocols (copy, pickle, ...) must not see None
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(READ_ONLY)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(READ_ONLY)

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: Any) -> dict[str, Any]:
        return thaw(self)

    def __reduce__(self) -> Any:
        return type(self), (thaw(self),)

    def to_dict(self) -> dict[str, Any]:
        """A plain, changeable deep copy."""
        return thaw(self)


class ReadOnlyList(list[Any]):
    """A JSON array inside ``event``: a real list (so ``==`` a list, JSON, slicing and ``+``
    give what a list gives, the last two as plain lists) that refuses changes."""

    __slots__ = ()

    def __init__(self, items: Any = ()) -> None:
        if len(self):
            raise TypeError(READ_ONLY)
        list.__init__(self, (freeze(item) for item in items))

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: Any) -> list[Any]:
        return thaw(self)

    def __reduce__(self) -> Any:
        return type(self), (thaw(self),)


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(READ_ONLY)


# Every method that changes a dict or a list in place (set on the classes here rather than
# written out one by one: the refusal is the same for each).
for _name in ("__setitem__", "__delitem__", "__ior__", "clear", "pop", "popitem", "setdefault",
              "update"):  # fmt: skip
    setattr(ReadOnlyDict, _name, _refuse)
for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend",
              "insert", "pop", "remove", "clear", "sort", "reverse"):  # fmt: skip
    setattr(ReadOnlyList, _name, _refuse)


def freeze(value: Any) -> Any:
    """JSON data as ``event`` hands it to an action: objects and arrays read-only."""
    if isinstance(value, dict):
        return ReadOnlyDict(value)
    if isinstance(value, list):
        return ReadOnlyList(value)
    return value


def thaw(value: Any) -> Any:
    """A plain, changeable deep copy of (read-only) JSON data."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value


class NotJson(TypeError):
    """An api method was given a value that JSON (RFC 8259) cannot carry."""


def _not_json(item: Any) -> NoReturn:
    raise NotJson(f"value of type {type(item).__name__} is not JSON")


# json.dumps and json.loads, built once in the zygote rather than per call (json.dumps with any
# option makes a new JSONEncoder each time, and both wrap the C coders in Python that every
# child would run, and copy the pages of). DECODE(text, 0) is (value, end).
ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_not_json).encode
DECODE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def as_json(value: Any, label: str) -> Any:
    """``value`` as plain JSON data (a copy), or an error naming ``label``: the api method and
    the claim or key. Raised in the action, at its call, so the execution log shows where; a
    value must never reach the host as its ``str()`` instead."""
    try:
        return DECODE(ENCODE(value), 0)[0]
    except NotJson as exc:
        raise TypeError(f"{label}: {exc}") from None
    except TypeError as exc:  # a key that is not a string, number, true, false or null
        raise TypeError(f"{label}: {exc}") from None
    except ValueError as exc:  # NaN, Infinity, or a value that contains itself
        raise ValueError(f"{label}: value is not JSON ({exc})") from None


def labelled(method: str, args: tuple[Any, ...]) -> str:
    """``id_token.set_custom_claim('x')``: the method, and the claim or key when it has one."""
    if len(args) > 1 and isinstance(args[0], str):
        return f"{method}({args[0][:100]!r})"
    return method
