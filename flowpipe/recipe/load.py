"""Load a recipe's YAML into plain data that remembers where each value was written.

PyYAML's own constructors forget positions and silently keep the last of two equal
keys; both matter here (every error names ``file:line:col``; a step written twice is
a mistake). So the document is *composed* with libyaml's safe composer and the node
tree is turned into plain ``dict``/``list``/scalars by hand, recording a position per
path. Only standard YAML tags are accepted: no python tags, no custom ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flowpipe.errors import Location, RecipeSyntaxError
from flowpipe.recipe.messages import one_line

__all__ = ["MAX_RECIPE_BYTES", "Document", "PathKey", "YamlPath", "load_document", "load_text"]

PathKey = str | int
YamlPath = tuple[PathKey, ...]

MAX_RECIPE_BYTES = 64 * 1024 * 1024
#: Nodes that aliases may add by repetition ("billion laughs" guard).
MAX_ALIAS_NODES = 100_000

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_STR, _MERGE = _TAG + "str", _TAG + "merge"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_COLLECTION_TAGS = frozenset((_TAG + "map", _TAG + "seq"))
_constructor = yaml.constructor.SafeConstructor()


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded recipe: plain data plus the position of every value and mapping key."""

    file: str
    path: Path | None
    data: Any
    positions: Mapping[YamlPath, Location]
    key_positions: Mapping[YamlPath, Location]
    block_scalars: frozenset[YamlPath]

    def at(self, path: YamlPath) -> Location:
        """Where the value at ``path`` was written (or its nearest written parent)."""
        loc = self.positions.get(path)
        if loc is not None:
            return loc  # the usual case, without slicing the path
        for end in range(len(path) - 1, -1, -1):
            loc = self.positions.get(path[:end])
            if loc is not None:
                return loc
        return Location(self.file, 1, 1)

    def key_at(self, path: YamlPath) -> Location:
        """Where the mapping key ending ``path`` was written (falls back to the value)."""
        return self.key_positions.get(path) or self.at(path)

    def template_location(self, path: YamlPath, template_line: int) -> Location:
        """Best position of line ``template_line`` (1-based) of a templated string."""
        loc = self.at(path)
        if path in self.block_scalars and template_line >= 1:
            return Location(loc.file, loc.line + template_line, 1)
        return loc


def load_document(path: Path, *, display: str | None = None) -> Document:
    """Read and load a recipe file; ``display`` is the name used in messages."""
    file = display if display is not None else str(path)
    try:
        size = path.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise RecipeSyntaxError(
                f"the recipe is {size} bytes; the limit is {MAX_RECIPE_BYTES}",
                Location(file, 1, 1),
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise RecipeSyntaxError(
            f"cannot read the recipe: {exc.strerror or exc}", Location(file, 1, 1),
            hint="check the path",
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecipeSyntaxError(
            "the recipe is not UTF-8 text", Location(file, line, col), hint="save it as UTF-8"
        ) from None
    return load_text(text, file=file, path=path)


def load_text(text: str, *, file: str = "<recipe>", path: Path | None = None) -> Document:
    """Load recipe text; raises RecipeSyntaxError at the offending position."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _unquoted_template(text, file, mark) or _syntax_error(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise _reader_error(exc, text, file) from None
    builder = _Builder(file, aliases="&" in text)
    try:
        data = builder.build(root, ()) if root is not None else None
    except RecursionError:
        raise RecipeSyntaxError("the YAML is nested too deeply", Location(file, 1, 1)) from None
    except RecipeSyntaxError as exc:
        where = exc.location
        at = None if where is None else _Mark(where.line - 1, where.column - 1)
        raise _unquoted_template(text, file, at) or exc from None
    return Document(
        file=file,
        path=path,
        data=data,
        positions=builder.positions,
        key_positions=builder.key_positions,
        block_scalars=frozenset(builder.block_scalars),
    )


def _loc(file: str, mark: Any) -> Location:
    return Location(file, int(mark.line) + 1, int(mark.column) + 1)


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> RecipeSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    loc = _loc(file, mark) if mark is not None else Location(file, 1, 1)
    problem = one_line(exc.problem or "invalid YAML")
    if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
        return RecipeSyntaxError(
            "YAML syntax: a tab character is used for indentation", loc,
            hint="indent with spaces",
        )
    if "another document" in problem:
        return RecipeSyntaxError(
            "YAML syntax: a recipe is one YAML document", loc, hint="remove the second '---'"
        )
    opened = exc.context_mark
    where = ""
    if exc.context and opened is not None and mark is not None and opened.line != mark.line:
        what = one_line(exc.context).removeprefix("while parsing ").removeprefix("while scanning ")
        what = what.removeprefix("a ").removeprefix("an ")
        where = f" (the {what} opened at line {opened.line + 1}, column {opened.column + 1})"
    return RecipeSyntaxError(f"YAML syntax: {problem}{where}", loc)


@dataclass(frozen=True, slots=True)
class _Mark:
    """A 0-based position, as libyaml marks them."""

    line: int
    column: int


_TEMPLATE_START = re.compile(r"[:\[,{-][ \t]*(\{\{)")
_LOOK_BACK = 3  # lines before an error where an unquoted '{{' may have started it


def _unquoted_template(text: str, file: str, mark: Any) -> RecipeSyntaxError | None:
    """'quote the template' when an error comes from a value that starts with ``{{``.

    YAML reads an unquoted ``{{ name }}`` as a mapping inside a mapping, so the
    natural ``model: {{ engine }}`` fails with a message about keys or syntax. The
    error's line (and the few before it) is searched for a value starting ``{{``
    outside quotes; the error then points there and shows the quoted value.
    """
    if mark is None:
        return None
    lines = text.splitlines()
    last = min(int(mark.line), len(lines) - 1)
    for number in range(last, max(-1, last - _LOOK_BACK - 1), -1):
        line = lines[number] if number >= 0 else ""
        end = int(mark.column) + 1 if number == int(mark.line) else len(line)
        for found in _TEMPLATE_START.finditer(line):
            start = found.start(1)
            if start <= end and not _in_quotes(line[:start]) and "#" not in line[:start]:
                value = _flow_value(line[start:])
                return RecipeSyntaxError(
                    "YAML reads a value that starts with '{{' as a mapping: quote the template",
                    Location(file, number + 1, start + 1),
                    hint=f"write {_quoted(value)}",
                )
    return None


def _in_quotes(before: str) -> bool:
    return before.count('"') % 2 == 1 or before.count("'") % 2 == 1


def _flow_value(rest: str) -> str:
    """The template value at the start of ``rest``: up to a comment, or the end of a flow
    item (a ``,``, ``]`` or ``}`` outside the template's own braces)."""
    depth = 0
    for i, ch in enumerate(rest):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return rest[:i].rstrip()
        elif (depth == 0 and ch in ",]") or (ch == "#" and rest[i - 1] in " \t"):
            return rest[:i].rstrip()
    return rest.rstrip()


def _quoted(value: str) -> str:
    return '"' + one_line(value, 120).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _char_at(text: str, line: int, column: int) -> str:
    lines = text.splitlines()
    if 0 <= line < len(lines) and 0 <= column < len(lines[line]):
        return lines[line][column]
    return ""


def _reader_error(exc: yaml.YAMLError, text: str, file: str) -> RecipeSyntaxError:
    pos = getattr(exc, "position", None)
    loc = Location(file, 1, 1)
    if isinstance(pos, int) and 0 <= pos <= len(text):
        line = text.count("\n", 0, pos) + 1
        loc = Location(file, line, pos - (text.rfind("\n", 0, pos) + 1) + 1)
    reason = getattr(exc, "reason", None) or "unreadable characters"
    return RecipeSyntaxError(
        f"YAML syntax: {one_line(str(reason))}", loc,
        hint="remove control characters from the file",
    )


class _Positions(Mapping[YamlPath, Location]):
    """Positions as libyaml marked them, made Locations only when asked for: a recipe
    has a position per value and only the few in messages are ever read."""

    __slots__ = ("_file", "_marks")

    def __init__(self, file: str, marks: dict[YamlPath, Any]) -> None:
        self._file = file
        self._marks = marks

    def __getitem__(self, path: YamlPath) -> Location:
        return _loc(self._file, self._marks[path])

    def get(self, path: YamlPath, default: Any = None) -> Any:
        mark = self._marks.get(path)
        return default if mark is None else _loc(self._file, mark)

    def __contains__(self, path: object) -> bool:
        return path in self._marks

    def __iter__(self) -> Iterator[YamlPath]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)


class _Builder:
    """Turns a composed node tree into plain data, recording positions on the way.

    Positions are kept as libyaml's marks (``_Positions`` turns them into Locations);
    one pass, one path tuple per value: this is most of loading a large recipe.
    """

    def __init__(self, file: str, *, aliases: bool = True) -> None:
        self.file = file
        # Without an '&' in the text there is no anchor, so no alias: no node is reached
        # twice and the alias budget has nothing to count.
        self.aliases = aliases
        self.marks: dict[YamlPath, Any] = {}
        self.key_marks: dict[YamlPath, Any] = {}
        self.block_scalars: set[YamlPath] = set()
        self._seen: set[int] = set()
        self._stack: set[int] = set()
        self._alias_budget = MAX_ALIAS_NODES

    @property
    def positions(self) -> _Positions:
        return _Positions(self.file, self.marks)

    @property
    def key_positions(self) -> _Positions:
        return _Positions(self.file, self.key_marks)

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        if self.aliases:
            return self._build_counting(node, path)
        self.marks[path] = node.start_mark
        if type(node) is yaml.ScalarNode:
            if node.style in ("|", ">"):
                self.block_scalars.add(path)
            if node.tag == _STR:
                return node.value
            return self.scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            raise self.bad_tag(node)
        if type(node) is yaml.MappingNode:
            return self.mapping(node, path)
        build = self.build
        return [build(item, (*path, i)) for i, item in enumerate(node.value)]

    def _build_counting(self, node: yaml.Node, path: YamlPath) -> Any:
        """``build`` for a text with anchors: each node reached again is an alias, and
        costs the alias budget; an alias inside its own anchor is refused."""
        node_id = id(node)
        if node_id in self._seen:
            self._alias_budget -= 1
            if self._alias_budget < 0:
                raise RecipeSyntaxError(
                    "YAML aliases expand to too many values", self.location(node),
                    hint="write the values out or use fewer nested aliases",
                )
        if type(node) is yaml.ScalarNode:
            self._seen.add(node_id)
            self.marks[path] = node.start_mark
            if node.style in ("|", ">"):
                self.block_scalars.add(path)
            if node.tag == _STR:
                return node.value
            return self.scalar(node)
        if node_id in self._stack:
            raise RecipeSyntaxError("a YAML alias refers to itself", self.location(node))
        if node.tag not in _COLLECTION_TAGS:
            raise self.bad_tag(node)
        self._seen.add(node_id)
        self._stack.add(node_id)
        self.marks[path] = node.start_mark
        try:
            if type(node) is yaml.MappingNode:
                return self.mapping(node, path)
            build = self.build
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._stack.discard(node_id)

    def location(self, node: yaml.Node) -> Location:
        return _loc(self.file, node.start_mark)

    def bad_tag(self, node: yaml.Node) -> RecipeSyntaxError:
        return RecipeSyntaxError(
            f"unsupported YAML tag {one_line(node.tag.replace(_TAG, '!!'))!r}", self.location(node),
            hint="recipes use plain YAML values only",
        )

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise self.bad_tag(node)
        try:
            return _constructor.yaml_constructors[node.tag](_constructor, node)
        except (ValueError, OverflowError, yaml.YAMLError):
            raise RecipeSyntaxError(
                f"cannot read {one_line(node.value)!r} as {node.tag.removeprefix(_TAG)}",
                self.location(node),
            ) from None

    def mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        key_marks, build = self.key_marks, self.build
        for key_node, value_node in node.value:
            if type(key_node) is not yaml.ScalarNode:
                raise RecipeSyntaxError(
                    "a mapping key must be a plain word, not a list or mapping",
                    self.location(key_node),
                )
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = key_node.value  # as written: `on:` stays "on", `1:` stays "1"
            if key in result:
                first = key_marks[(*path, key)]
                raise RecipeSyntaxError(
                    f"duplicate key {one_line(key)!r} (first written at line "
                    f"{first.line + 1})",
                    self.location(key_node),
                    hint="keys of a mapping must be unique; rename or merge one of them",
                )
            here = (*path, key)
            key_marks[here] = key_node.start_mark
            result[key] = build(value_node, here)
        for source in merges:
            self.merge(result, source, path)
        return result

    def merge(self, result: dict[str, Any], source: yaml.Node, path: YamlPath) -> None:
        """Apply a ``<<:`` merge: explicit keys win, earlier merge sources win."""
        sources = source.value if isinstance(source, yaml.SequenceNode) else [source]
        for item in sources:
            if not isinstance(item, yaml.MappingNode):
                raise RecipeSyntaxError(
                    "'<<' merges only mappings", self.location(item),
                    hint="write '<<: *anchor' where the anchor is a mapping",
                )
            merged = self.build(item, (*path, "<<"))
            for key, value in merged.items():
                if key not in result:
                    result[key] = value
                    where = self.marks.get((*path, "<<", key))
                    if where is not None:
                        self.marks[(*path, key)] = where
                        self.key_marks[(*path, key)] = where
