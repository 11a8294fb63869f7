"""Response bodies declared once: a `Shape` names a body's keys, in order, each with the schema field
that documents it and the getter that reads it from what the service returned. Both sides come from
that one declaration:

- `shape.render(source)` builds the plain dict the view returns. It is compiled once, when the shape
  is declared, into a function that is one dict display (`{"id": source.id, ...}`), as a hand-written
  renderer would be: no serializer machinery and no loop over fields per item (issueBulk and earn
  render thousands of items per request). `shape.code` is its source.
- `shape.serializer` is the serializer class drf-spectacular documents, named after the shape, as
  `inline_serializer` would build it; `shape.field(...)` is an instance of it to nest in another body.

A getter is a dotted attribute path (`"redemption.customer_id"`), `via(convert, path)` (the attribute
converted: `via(to_iso, "valid_till")`), `or_none(path)` (a blank attribute as null), `item(key)`
(`source[key]`), `always(value)` or any callable of the source; all but the last are compiled inline.
A schema field is a DRF field (the value goes out as the getter reads it) or a nested shape: `shape.field()` renders one object,
`shape.many()` a list, `shape.by_key()` a dict's values, and `serialized()` hands the value to a DRF
serializer that is already its shape's one declaration. A key whose schema field is not required
(`required=False`) is left out of the body when its value is None or empty, as issueBulk leaves out
an empty `errors`; every other key is always present, null or not.
"""

from __future__ import annotations

import copy
import itertools
import json
import linecache
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from json.encoder import encode_basestring
from typing import Any

from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.utils import encoders

Getter = Callable[[Any], Any]
_EMPTY = ([], {}, ())
_compiled = itertools.count()


def _attribute(source, path: str):
    for name in path.split("."):
        source = getattr(source, name)
    return source


@dataclass(frozen=True)
class Via:
    """`via(convert, path)`: the attribute at `path`, converted; compiled as `convert(source.path)`."""

    convert: Callable[[Any], Any]
    path: str

    def __call__(self, source):
        return self.convert(_attribute(source, self.path))

    def expression(self, bind: Callable[[Any], str], read: Callable[[str], str]) -> str:
        return f"{bind(self.convert)}({read(self.path)})"


@dataclass(frozen=True)
class OrNone:
    """`or_none(path)`: the attribute at `path`, null when empty (a blank text goes out as null)."""

    path: str

    def __call__(self, source):
        return _attribute(source, self.path) or None

    def expression(self, bind: Callable[[Any], str], read: Callable[[str], str]) -> str:
        return f"({read(self.path)} or None)"


@dataclass(frozen=True)
class Always:
    """`always(value)`: the same value whatever the source (immutable: it is shared by every body)."""

    value: bool | int | str | None

    def __call__(self, _source):
        return self.value

    def expression(self, bind: Callable[[Any], str], read: Callable[[str], str]) -> str:
        return bind(self.value)


@dataclass(frozen=True)
class Item:
    """`item(key)`: `source[key]`, for a source that is a dict or a tuple."""

    key: str | int

    def __call__(self, source):
        return source[self.key]

    def expression(self, bind: Callable[[Any], str], read: Callable[[str], str]) -> str:
        return f"source[{bind(self.key)}]"


def via(convert: Callable[[Any], Any], path: str) -> Via:
    return Via(convert, _checked_path(path))


def or_none(path: str) -> OrNone:
    return OrNone(_checked_path(path))


def always(value: bool | int | str | None) -> Always:
    return Always(value)


def item(key: str | int) -> Item:
    if not isinstance(key, str | int):
        raise TypeError(f"Not a key: {key!r}")
    return Item(key)


@dataclass(frozen=True)
class Nested:
    """A shape (or serializer) in the place of a schema field: the field that documents it, and how a
    value becomes its part of the body: `convert(value)`, or each item for `each`, or each dict value
    for `each_value`."""

    schema: serializers.Field
    convert: Callable[[Any], Any]
    each: bool = False
    each_value: bool = False
    # The shape `convert` renders with, when it is one: its JSON text is then written directly.
    shape: Shape | None = None


class Shape:
    """One response body (or a part of one): `name` is its schema component's, `fields` maps each key,
    in body order, to (schema field or nested shape, getter)."""

    def __init__(
        self,
        name: str,
        fields: Mapping[str, tuple[serializers.Field | Nested | Shape, str | Getter]],
        *,
        description: str | None = None,
    ):
        self.name = name
        self.description = description
        self.schema_fields: dict[str, serializers.Field] = {}
        self._parts: list[tuple[str, str | Getter, Nested | None]] = []
        for key, (schema, getter) in fields.items():
            nested = schema.field() if isinstance(schema, Shape) else schema
            if not isinstance(nested, Nested):
                nested = None
            self.schema_fields[key] = nested.schema if nested is not None else schema
            self._parts.append((key, _checked_path(getter) if isinstance(getter, str) else getter, nested))
        self.keys = tuple(self.schema_fields)
        self.code, self.render = self._compile()

    def __repr__(self) -> str:
        return f"<Shape {self.name}: {', '.join(self.keys)}>"

    def _compile(self) -> tuple[str, Callable[[Any], dict]]:
        """The renderer's source and function: the keys in declared order, an optional key set only
        when its value is neither None nor empty. An attribute several paths go through is read once
        into a local (`source.instance.promotion` is a related-object lookup on a model)."""
        namespace: dict[str, Any] = {"_EMPTY": _EMPTY}
        bind = _binder(namespace)
        read, reads = self._reads()
        required, statements = [], []
        for key, getter, nested in self._parts:
            value = _expression(getter, bind, read)
            optional = not self.schema_fields[key].required
            if nested is not None and not optional:
                value = _nested_expression(nested, value, bind)
            if not optional and not statements:
                required.append(f"{key!r}: {value},")
            elif not optional:
                statements.append(f"body[{key!r}] = {value}")
            else:
                rendered = _nested_expression(nested, "value", bind) if nested is not None else "value"
                statements += [
                    f"value = {value}",
                    "if value is not None and value not in _EMPTY:",
                    f"    body[{key!r}] = {rendered}",
                ]
        lines = [
            "def render(source):",
            *(f"    {line}" for line in reads),
            "    body = {",
            *(f"        {line}" for line in required),
            "    }",
            *(f"    {line}" for line in statements),
            "    return body",
        ]
        return _compiled_function(self.name, "render", lines, namespace)

    def _reads(self) -> tuple[Callable[[str], str], list[str]]:
        """`read(path)`, the expression that reads an attribute path, and the statements that read into
        locals the attributes several paths go through (each once)."""
        uses = Counter(
            prefix
            for _, getter, _ in self._parts
            if (path := _path_of(getter)) is not None
            for prefix in _prefixes(path)
        )
        shared: dict[str, str] = {}  # path -> the local holding it

        def read(path: str) -> str:
            names = path.split(".")
            for length in range(len(names), 0, -1):
                local = shared.get(".".join(names[:length]))
                if local is not None:
                    return ".".join([local, *names[length:]])
            return f"source.{path}"

        reads = []
        for path in sorted((path for path, count in uses.items() if count > 1), key=lambda p: p.count(".")):
            reads.append(f"{(local := f'_a{len(shared)}')} = {read(path)}")
            shared[path] = local
        return read, reads

    @cached_property
    def render_json(self) -> Callable[[Any], str]:
        """`render_json(source)`: the JSON text of `render(source)` exactly as DRF's `JSONRenderer` writes
        it with the settings that allow it (`json_text_writable`), without building the dicts: compiled
        once, on first use, like `render`. Each key's value is encoded by its schema field's type (a text
        by the C encoder `json.dumps` uses, a count by `int`'s repr, anything else, or a value of another
        type than its field's, by `json_value`); a nested shape writes its own text."""
        return self._compile_json()[1]

    def _compile_json(self) -> tuple[str, Callable[[Any], str]]:
        """`render_json`'s source and function. Without optional keys, one join of the keys' texts and
        the values' encodings; with some, the parts written key by key (an optional one only when its
        value is neither None nor empty, as `render` leaves it out)."""
        namespace: dict[str, Any] = {
            "_EMPTY": _EMPTY,
            "_s": encode_basestring,
            "_i": int.__repr__,
            "_v": json_value,
        }
        bind = _binder(namespace)
        read, reads = self._reads()
        lines = ["def render_json(source):", *(f"    {line}" for line in reads)]
        encodings = [
            (encode_basestring(key) + ":", f"_v{number}", _expression(getter, bind, read), nested)
            for number, (key, getter, nested) in enumerate(self._parts)
        ]
        if all(self.schema_fields[key].required for key in self.keys):
            pieces = []
            for number, (name, local, value, nested) in enumerate(encodings):
                pieces += [repr(("{" if number == 0 else ",") + name), _json_expression(
                    self.schema_fields[self.keys[number]], nested, local, bind, value=value
                )]  # fmt: skip
            pieces.append(repr("}") if encodings else repr("{}"))
            lines.append(f"    return ''.join(({', '.join(pieces)},))")
            return _compiled_function(self.name, "render_json", lines, namespace)
        lines.append("    parts = []")
        written = maybe = False  # a key certainly / possibly written before this one
        for key, (name, local, value, nested) in zip(self.keys, encodings, strict=True):
            if written:
                separator = repr("," + name)
            else:
                separator = f"(',' if parts else '') + {name!r}" if maybe else repr(name)
            encoded = _json_expression(self.schema_fields[key], nested, local, bind)
            lines.append(f"    {local} = {value}")
            if self.schema_fields[key].required:
                lines.append(f"    parts += ({separator}, {encoded})")
                written = True
            else:
                lines += [
                    f"    if {local} is not None and {local} not in _EMPTY:",
                    f"        parts += ({separator}, {encoded})",
                ]
                maybe = True
        lines.append("    return '{' + ''.join(parts) + '}'")
        return _compiled_function(self.name, "render_json", lines, namespace)

    @cached_property
    def serializer(self) -> type[serializers.Serializer]:
        """The schema component: a serializer class named after the shape, built once."""
        # DRF orders a serializer's fields by when each was created, and a nested shape's field is
        # created after the plain fields of the same declaration: copies (DRF copies a field by
        # constructing it again) are created in key order.
        attrs: dict[str, Any] = {key: copy.deepcopy(field) for key, field in self.schema_fields.items()}
        attrs["__doc__"] = self.description
        return type(self.name, (serializers.Serializer,), attrs)

    def field(self, **kwargs) -> Nested:
        """One object rendered by this shape, documented as this shape's component."""
        return Nested(self.serializer(**kwargs), self.render, shape=self)

    def many(self, **kwargs) -> Nested:
        """A list of objects, each rendered by this shape."""
        return Nested(self.serializer(many=True, **kwargs), self.render, each=True, shape=self)

    def by_key(self, **kwargs) -> Nested:
        """A dict whose values are rendered by this shape, its keys kept as they come."""
        return Nested(
            serializers.DictField(child=self.serializer(), **kwargs), self.render, each_value=True, shape=self
        )


def serialized(serializer_class: type[serializers.BaseSerializer], **kwargs) -> Nested:
    """A body part a DRF serializer both documents and renders (`serializer_class(value).data`), for a
    serializer that is already the one declaration of its shape."""
    return Nested(serializer_class(**kwargs), lambda value: serializer_class(value, **kwargs).data)


def envelope(name: str, data: serializers.Field | Nested | Shape) -> Shape:
    """`{"data": ..., "errors": []}`, the body of a v1 success answer; it renders the data it is given."""
    return Shape(name, {"data": (data, itself), "errors": (serializers.ListField(), no_errors)})


def itself(source):
    """The getter of a key whose value is the whole source."""
    return source


def no_errors(_source) -> list:
    return []


def _checked_path(path: str) -> str:
    if not all(name.isidentifier() for name in path.split(".")):
        raise ValueError(f"Not an attribute path: {path!r}")
    return path


def _path_of(getter: str | Getter) -> str | None:
    if isinstance(getter, str):
        return getter
    if isinstance(getter, Via | OrNone):
        return getter.path
    return None


def _prefixes(path: str) -> list[str]:
    """`a.b.c` -> `a`, `a.b`, `a.b.c`."""
    names = path.split(".")
    return [".".join(names[:length]) for length in range(1, len(names) + 1)]


def _expression(getter: str | Getter, bind: Callable[[Any], str], read: Callable[[str], str]) -> str:
    if isinstance(getter, str):
        return read(getter)
    if isinstance(getter, Via | OrNone | Always | Item):
        return getter.expression(bind, read)
    if getter is itself:
        return "source"
    return f"{bind(getter)}(source)"


def _nested_expression(nested: Nested, value: str, bind: Callable[[Any], str]) -> str:
    convert = bind(nested.convert)
    if nested.each:
        return f"[{convert}(item) for item in {value}]"
    if nested.each_value:
        return f"{{key: {convert}(item) for key, item in {value}.items()}}"
    return f"{convert}({value})"


def _binder(namespace: dict[str, Any]) -> Callable[[Any], str]:
    """`bind(value)`: a new name in `namespace` holding `value` (a compiled renderer's constant)."""

    def bind(value) -> str:
        name = f"_{len(namespace)}"
        namespace[name] = value
        return name

    return bind


def _compiled_function(shape: str, name: str, lines: list[str], namespace: dict[str, Any]):
    """(source, function) of a renderer whose source is `lines`, defining `name`."""
    code = "\n".join(lines) + "\n"
    # A file name of its own, its text in linecache: a traceback through a renderer shows its line.
    filename = f"<shape {shape} {next(_compiled)}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    exec(compile(code, filename, "exec"), namespace)
    function = namespace[name]
    function.__qualname__ = f"Shape({shape}).{name}"
    return code, function


# --- JSON text ----------------------------------------------------------------------------------------
# What `rest_framework.renderers.JSONRenderer` writes with its default settings (UNICODE_JSON, COMPACT_JSON
# and STRICT_JSON true): `json.dumps(data, cls=encoders.JSONEncoder, ensure_ascii=False, allow_nan=False,
# separators=(",", ":"))`, then U+2028 and U+2029 escaped (`ShapedJSONRenderer` does that last step).


def json_text_writable(renderer: JSONRenderer) -> bool:
    """Whether `renderer` writes what `render_json` writes (its settings are DRF's defaults)."""
    return (
        not renderer.ensure_ascii
        and renderer.compact
        and renderer.strict
        and renderer.encoder_class is encoders.JSONEncoder
    )


def _json_any(value) -> str:
    return json.dumps(
        value, cls=encoders.JSONEncoder, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )


def json_value(value) -> str:
    """One value's JSON text, as `json.dumps` writes it inside a body (`_json_any` for anything but a
    text, a number of type `int`, a boolean or None)."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return _json_any(value)


def _json_expression(
    schema: serializers.Field,
    nested: Nested | None,
    local: str,
    bind: Callable[[Any], str],
    *,
    value: str = "",
) -> str:
    """The expression that writes the JSON text of the value in `local` (of `value`, read into `local`
    on the way, when given)."""
    first = f"({local} := {value})" if value else local
    if nested is not None:
        if nested.shape is None or nested.each_value:  # a serializer's data, a dict of objects: json.dumps
            return f"_v({_nested_expression(nested, first, bind)})"
        write = bind(nested.shape.render_json)
        if nested.each:
            return f"'[' + ','.join(map({write}, {first})) + ']'"
        return f"{write}({first})"
    if isinstance(schema, serializers.CharField | serializers.ChoiceField):
        return f"(_s({local}) if type({first}) is str else _v({local}))"
    if isinstance(schema, serializers.IntegerField):
        return f"(_i({local}) if type({first}) is int else _v({local}))"
    return f"_v({first})"


class Shaped(Mapping):
    """A body `shape` renders from `source`, for a DRF `Response`: `ShapedJSONRenderer` writes its JSON
    text directly (`shape.render_json`); everything else reads it as the dict `shape.render` builds
    (built once, when first read)."""

    __slots__ = ("_plain", "shape", "source")

    def __init__(self, shape: Shape, source):
        self.shape, self.source, self._plain = shape, source, None

    @property
    def plain(self) -> dict:
        if self._plain is None:
            self._plain = self.shape.render(self.source)
        return self._plain

    def json_text(self) -> str:
        return self.shape.render_json(self.source)

    def __getitem__(self, key):
        return self.plain[key]

    def __iter__(self):
        return iter(self.plain)

    def __len__(self) -> int:
        return len(self.plain)

    def __repr__(self) -> str:
        return f"Shaped({self.shape.name}, {self.plain!r})"


class ShapedJSONRenderer(JSONRenderer):
    """DRF's `JSONRenderer`, which writes a `Shaped` body's JSON text directly: the same bytes, without
    building the body's dicts and walking them again (tests/promotions_site/test_shapes.py holds it to
    `JSONRenderer`; the test suite's conftest checks every answer it renders)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, Shaped):
            if (
                json_text_writable(self)
                and self.get_indent(accepted_media_type, renderer_context or {}) is None
            ):
                return data.json_text().replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
            data = data.plain
        return super().render(data, accepted_media_type, renderer_context)
