"""Typed YAML configs: one loader that turns a YAML mapping into frozen dataclasses, validated on load.

Every config of specsim (hardware, energy tables, and the run configs built on them) is a tree of
dataclasses whose fields carry their unit, range and allowed values in ``field(metadata=...)``
(see :func:`spec`). :func:`build` walks a parsed YAML mapping against that tree and raises a
:class:`~specsim.errors.SpecsimError` naming the file, the dotted key and what is expected on the
first problem: unknown key, missing key, wrong type, value out of range, value not among choices.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import re
import stat
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from specsim.errors import SpecsimError, cut, shown

T = TypeVar("T")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML loading (the C parser where available) that refuses a key repeated in one mapping."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # merge keys (<<: *anchor) first, as SafeLoader does
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            mark = key_node.start_mark
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be text or a number, got {type(key).__name__}", mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {shown(key, 60)} given twice", mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# no timestamps: 2024-01-01 stays text (a config holds no dates, and results files record values as JSON)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}

# YAML 1.1 (PyYAML) reads 1e-3 as a string (its floats need a dot); read it as the number YAML 1.2 and
# every user mean, in files and in --set values alike
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)
_LOADER = _Loader
_PARSED: dict[tuple, Any] = {}  # (path, mtime_ns, size) -> parsed mapping: sweeps reload the same files


@dataclasses.dataclass(frozen=True)
class Constant:
    """One physical constant of a data table: its value, its unit (checked by the table that holds it)
    and where it comes from (a bibliography key of ``docs/bibliography.md`` and the table or section)."""

    value: float
    unit: str
    source: str

    def validate(self, where: str) -> None:
        if not (math.isfinite(self.value) and 0 <= self.value <= 1e15):
            raise SpecsimError(
                f"{where}.value: expected a number in [0, 1e15]{f' ({self.unit})' if self.unit else ''}, "
                f"got {self.value!r}"
            )

    def expect(self, where: str, unit: str) -> Constant:
        """Itself, after checking that its unit is ``unit``."""
        if self.unit != unit:
            raise SpecsimError(f"{where}.unit: expected {unit!r}, got {self.unit!r}")
        return self


def check_units(obj: Any, where: str, units: dict[str, str]) -> None:
    """Every :class:`Constant` field of ``obj`` named in ``units`` carries that unit."""
    for key, unit in units.items():
        getattr(obj, key).expect(f"{where}.{key}", unit)


def spec(
    default: Any = dataclasses.MISSING,
    *,
    unit: str = "",
    doc: str = "",
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple | None = None,
) -> Any:
    """A dataclass field with its unit, documentation and validation rule (``gt``/``ge``/``le``/``lt``/
    ``choices``)."""
    meta = {"unit": unit, "doc": doc, "gt": gt, "ge": ge, "le": le, "lt": lt, "choices": choices}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types (cached: resolving string annotations is slow)."""
    return typing.get_type_hints(cls)


_BUILT: dict[tuple, Any] = {}  # (class, files' (path, mtime_ns, size)) -> built config: frozen, shared


def file_key(path: str | Path, st: os.stat_result | None = None) -> tuple:
    """(resolved path, modification time in ns, size in bytes) of a file: what a memo of something loaded
    from it depends on (``st``: the file's ``os.stat``, when the caller has it); (path, None, None) when
    the file cannot be read."""
    p = Path(path)
    try:
        st = st if st is not None else os.stat(p)
    except OSError:
        return (str(p), None, None)
    return (str(p.resolve()), st.st_mtime_ns, st.st_size)


def cached(cls: type, paths: tuple, make: Any) -> Any:
    """``make()`` once per ``cls`` and state of the files ``paths`` (a frozen config is shared, not
    copied): sweeps build the same energy tables and presets for every design point."""
    key = (cls, *(file_key(p) for p in paths))
    if key not in _BUILT:
        _BUILT[key] = make()
    return _BUILT[key]


MAX_YAML_BYTES = 16 << 20  #: a config, point list or architecture file larger than this is refused
MAX_DEPTH = 32  #: nesting of mappings and lists a document may have
MAX_VALUES = 200_000  #: values a document may hold once its aliases are expanded


def check_document(data: Any, where: str) -> Any:
    """``data`` (a parsed YAML value) if it nests at most :data:`MAX_DEPTH` deep and holds at most
    :data:`MAX_VALUES` values with every alias expanded; else a one-line SpecsimError. Walks iteratively
    and stops at the limit, so an alias bomb ("billion laughs") is refused in a few milliseconds."""
    stack = [(data, 1)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if not isinstance(node, (dict, list, str, int, float, bool, type(None))):
            raise SpecsimError(
                f"{where}: holds a {type(node).__name__} value; expected text, numbers, true/false, "
                "lists and mappings only"
            )
        if seen > MAX_VALUES:
            raise SpecsimError(
                f"{where}: more than {MAX_VALUES:,} values once its aliases are expanded; refused (a YAML alias bomb?)"
            )
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise SpecsimError(f"{where}: nested deeper than {MAX_DEPTH} levels; refused")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return data


def load_yaml(path: str | Path) -> dict:
    """Parse a YAML file that must hold a mapping; malformed or missing files raise a one-line SpecsimError."""
    data = load_yaml_document(path)
    if not isinstance(data, dict):
        raise SpecsimError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def load_yaml_document(path: str | Path) -> Any:
    """Parse a YAML file (any document); malformed or missing files raise a one-line SpecsimError.

    Parsed files are cached by path, modification time and size (a copy is returned), so a sweep that
    rebuilds a run config and its baselines per design point parses each file once per process.
    """
    path = Path(path)
    try:
        st = os.stat(path)
        key = file_key(path, st)
        if key in _PARSED:
            return copy.deepcopy(_PARSED[key])
        if not stat.S_ISREG(st.st_mode):
            raise SpecsimError(f"{path}: not a regular file (a folder, device or pipe); expected a YAML file")
        if st.st_size > MAX_YAML_BYTES:
            raise SpecsimError(f"{path}: {st.st_size:,} bytes, larger than the {MAX_YAML_BYTES:,} a YAML input may be")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecsimError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise SpecsimError(f"{path}: not a UTF-8 text file (byte {err.start}); expected a YAML file") from None
    except (OSError, ValueError) as err:  # ValueError: a path with a NUL character
        raise SpecsimError(
            f"{cut(str(path), 200)}: cannot read ({getattr(err, 'strerror', None) or 'invalid path'})"
        ) from None
    data = parse_yaml(text, str(path))
    _PARSED[key] = copy.deepcopy(data)
    return data


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text (from ``where``, for messages) within the document limits (:func:`check_document`);
    any problem is a one-line SpecsimError."""
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpecsimError(f"{where}:{at} malformed YAML ({cut(str(problem))})") from None
    except RecursionError:
        raise SpecsimError(f"{where}: nested deeper than {MAX_DEPTH} levels; refused") from None
    return check_document(data, where)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin is dict:
        return "a mapping of names to " + _describe(typing.get_args(tp)[1])
    if origin in (list, tuple):
        return "a list of " + _describe(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        type(None): "null",
        Any: "any value",
    }.get(tp, str(tp))


def _convert(tp: Any, value: Any, where: str, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SpecsimError(f"{where}: expected a mapping, got {shown(value)}")
        return _build(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _convert(arg, value, where, meta)
            except SpecsimError as err:
                errors.append((arg, err))
        # the value has the shape of one alternative (a list for list[str]): its error says what is wrong
        same_shape = [err for arg, err in errors if _same_shape(arg, value)]
        if len(same_shape) == 1:
            raise same_shape[0]
        raise SpecsimError(f"{where}: expected {_describe(tp)}, got {shown(value)}")
    if origin is typing.Literal:  # a fixed word such as "auto" beside a number (no range applies to it)
        if value not in typing.get_args(tp) or isinstance(value, bool):
            raise SpecsimError(f"{where}: expected {_describe(tp)}, got {shown(value)}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise SpecsimError(f"{where}: expected {_describe(tp)}, got {shown(value)}")
        _, vt = typing.get_args(tp)
        return {str(k): _convert(vt, v, f"{where}.{k}", {}) for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise SpecsimError(f"{where}: expected {_describe(tp)}, got {shown(value)}")
        items = [_convert(typing.get_args(tp)[0], v, f"{where}[{i}]", meta) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is type(None):
        if value is not None:
            raise SpecsimError(f"{where}: expected null, got {shown(value)}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecsimError(f"{where}: expected true or false, got {shown(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecsimError(f"{where}: expected an integer{_unit(meta)}, got {shown(value)}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
            raise SpecsimError(f"{where}: expected a finite number{_unit(meta)}, got {shown(value)}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise SpecsimError(f"{where}: expected a string, got {shown(value)}")
        if "\0" in value or len(value) > MAX_STRING:
            raise SpecsimError(
                f"{where}: expected text of at most {MAX_STRING} characters without NUL, got {shown(value)}"
            )
    _check_range(value, where, meta)
    return value


MAX_STRING = 4096  #: characters of one text value (names, paths, scheme strings)


def _finite(value: int | float) -> bool:
    """A number a float can hold exactly enough: finite, and an integer no larger than a double's range."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _same_shape(tp: Any, value: Any) -> bool:
    """Whether ``value`` is the container kind of type ``tp`` (a list for list[...], a mapping for dicts)."""
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return isinstance(value, list)
    if origin is dict or dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if tp in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return tp in (str, bool) and isinstance(value, tp)


def _unit(meta: dict) -> str:
    return f" ({meta['unit']})" if meta.get("unit") else ""


def _check_range(value: Any, where: str, meta: dict) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise SpecsimError(f"{where}: expected one of {', '.join(map(str, choices))}, got {shown(value)}")
    for key, ok, text in (
        ("gt", lambda v, b: v > b, "> {}"),
        ("ge", lambda v, b: v >= b, ">= {}"),
        ("le", lambda v, b: v <= b, "<= {}"),
        ("lt", lambda v, b: v < b, "< {}"),
    ):
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            raise SpecsimError(f"{where}: expected a value {text.format(bound)}{_unit(meta)}, got {shown(value)}")


def _build(cls: type[T], data: dict, where: str) -> T:
    hints = _hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in known:
            raise SpecsimError(f"{where}.{key}: unknown key (expected one of: {', '.join(known)})")
    kwargs = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}", dict(f.metadata))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecsimError(f"{where}.{name}: missing key ({_describe(hints[name])}{_unit(f.metadata)})")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        check(where)
    return obj


def build_section(cls: type[T], data: Any, where: str) -> T:
    """Build a nested section (e.g. a plug-in's parameters) inside an outer :func:`build`: errors read
    ``<where>.<key>: ...`` and are located by the outer build."""
    if not isinstance(data, dict):
        raise SpecsimError(f"{where}: expected a mapping, got {shown(data)}")
    return _build(cls, data, where)


def _located(err: SpecsimError, source: str | Path) -> SpecsimError:
    msg = str(err)
    msg = msg[len("<root>.") :] if msg.startswith("<root>.") else msg.replace("<root>", "top level", 1)
    return SpecsimError(f"{source}: {msg}")


def build(cls: type[T], data: dict, source: str | Path) -> T:
    """Build dataclass ``cls`` from mapping ``data`` read from ``source``; errors read ``<source>: <key>: ...``.

    After a dataclass is built its ``validate(where)`` method, if any, runs cross-field checks.
    """
    try:
        return _build(cls, data, "<root>")
    except SpecsimError as err:
        raise _located(err, source) from None


def override(data: dict, cls: type, assignment: str, source: str | Path) -> None:
    """Apply one ``key.path=value`` (value parsed as YAML) to raw config ``data`` in place (``--set``)."""
    if "=" not in assignment:
        raise SpecsimError(f"--set {shown(assignment)}: expected key=value")
    key, text = assignment.split("=", 1)
    set_key(data, cls, key, parse_value(text), source)


def parse_value(text: str) -> Any:
    """A command-line value as YAML (``8`` -> 8, ``[a, b]`` -> a list); text that is not YAML stays text."""
    if not text.strip():
        return ""
    if len(text) > MAX_YAML_BYTES:
        raise SpecsimError(f"--set value of {len(text):,} characters: larger than the {MAX_YAML_BYTES:,} allowed")
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        return text
    except RecursionError:
        raise SpecsimError(f"--set value: nested deeper than {MAX_DEPTH} levels; refused") from None
    return check_document(data, "--set value")


def set_key(data: dict, cls: type, key: str, value: Any, source: str | Path, label: str = "--set") -> None:
    """Set dotted ``key`` of raw config ``data`` (in place) to ``value``.

    The key must name a field of ``cls`` (through nested dataclasses, dicts with an existing key, and
    list indices); anything else raises a one-line SpecsimError ``<source>: <label> <key>: ...``.
    The value itself is checked when the config is built.
    """
    key = key.strip()
    parts = key.split(".")
    tp: Any = cls
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
            origin = typing.get_origin(tp)
        if dataclasses.is_dataclass(tp):
            hints = _hints(tp)
            if part not in hints or part == "path":
                known = ", ".join(h for h in hints if h != "path")
                raise SpecsimError(f"{source}: {label} {key}: unknown key '{where}' (expected one of: {known})")
            tp = hints[part]
        elif tp is Any or (origin is dict and typing.get_args(tp)[1] is Any):
            tp = Any  # a free mapping (checked where it is used): any key may be set
        elif origin is dict:
            if not isinstance(node, dict) or part not in node:
                known = ", ".join(map(str, node)) if isinstance(node, dict) and node else "none in the file"
                raise SpecsimError(f"{source}: {label} {key}: unknown key '{where}' (expected one of: {known})")
            tp = typing.get_args(tp)[1]
        elif origin in (list, tuple):
            if not (part.isascii() and part.isdigit()) or not isinstance(node, list) or int(part) >= len(node):
                raise SpecsimError(f"{source}: {label} {key}: '{where}' is not an index of the list")
            tp = typing.get_args(tp)[0]
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
            continue
        else:
            raise SpecsimError(f"{source}: {label} {key}: '{'.'.join(parts[:depth])}' has no sub-keys")
        if not isinstance(node, dict):
            raise SpecsimError(f"{source}: {label} {key}: '{'.'.join(parts[:depth])}' is not a mapping in the file")
        if last:
            node[part] = value
            return
        node = node.setdefault(part, {})


def revalidate(obj: T, source: str) -> T:
    """Re-run the cross-field checks of a config changed in code (e.g. a CLI override of its array size)."""
    try:
        obj.validate("<root>")
    except SpecsimError as err:
        raise _located(err, source) from None
    return obj


def check_names(where: str, mapping: dict, names: tuple | list | dict, what: str) -> None:
    """A mapping with a fixed set of keys: every one of ``names`` present, nothing else (``what``: its value)."""
    for name in names:
        if name not in mapping:
            raise SpecsimError(f"{where}.{name}: missing key ({what})")
    for name in mapping:
        if name not in names:
            raise SpecsimError(f"{where}.{name}: unknown key (expected one of: {', '.join(names)})")
