"""The hostile corpus: every attack of issue 15, and the ones that held, as data.

Each ``Case`` is one ``flowpipe`` command line run in a fresh folder (``{case}`` in its
arguments and environment), with the files it needs, an optional ``setup`` (fill or
damage a cache first), an optional ``prelude`` (Python run in the child before the CLI,
to inject a fault) and what must come out: the exit code, the substring of the one
error line, the ``LINE:COL`` that line must name, and an optional ``check`` of what is
on disk afterwards. ``tests/security/test_corpus.py`` runs each case in a child process
under a memory and a CPU-time limit; ``benchmarks/security_corpus.py`` measures them.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

Runner = Callable[[list[str]], str]  # runs one flowpipe command in the case folder: stdout


@dataclass(frozen=True)
class Case:
    """One attack: a command line, its files, and what it must end with."""

    id: str
    argv: tuple[str, ...]
    exit: int
    error: str | None = None  # substring of the last stderr line; None for success
    where: str | None = None  # "LINE:COL" that error line names in recipe.yaml
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    setup: Callable[[Path, Runner], None] | None = None
    prelude: str | None = None
    check: Callable[[Path, str, str], None] | None = None


VALIDATE = ("validate", "recipe.yaml")
RUN = ("run", "recipe.yaml", "--plain", "--time-scale", "0.001", "-o", "out")
HEAD = "version: 1\nname: hostile\ndefaults: {count: 1}\n"


def _prompt(template: str) -> str:
    """A recipe whose one step's prompt is ``template`` (at line 6, column 13)."""
    return f"{HEAD}steps:\n  a:\n    prompt: {json.dumps(template)}\n"


# -- issue 15, item 2: templates that asked for gigabytes or minutes -----------------------

TEMPLATE_ATTACKS = {
    "center-filter": "{{ 'x'|center(10**9) }}",
    "center-method": "{{ 'x'.center(10**9) }}",
    "ljust-method": "{{ 'x'.ljust(10**9, 'y') }}",
    "zfill-method": "{{ '1'.zfill(10**9) }}",
    "expandtabs": "{{ ('\\t' * 1000).expandtabs(10**6) }}",
    "percent-width": "{{ '%01000000000d' % 1 }}",
    "percent-star": "{{ '%*d' % (10**9, 1) }}",
    "percent-precision": "{{ '%.999999999f' % 1.5 }}",
    "format-filter": "{{ '%0999999999d'|format(1) }}",
    "format-width": "{{ '{:>1000000000}'.format(1) }}",
    "format-nested-width": "{{ '{:>{}}'.format(1, 10**9) }}",
    "format-map-width": "{{ '{a:>1000000000}'.format_map({'a': 1}) }}",
    "format-repeat-field": "{{ ('{0}' * 1000).format('y' * 100000) }}",
    "indent": "{{ ('x\\n' * 50000)|indent(100000) }}",
    "indent-string": "{{ ('x\\n' * 50000)|indent('y' * 100000) }}",
    "wordwrap": "{{ ('a ' * 50000)|wordwrap(1, wrapstring='z' * 100000) }}",
    "replace-filter": "{{ ('x' * 100000)|replace('x', 'y' * 100000) }}",
    "replace-method": "{{ ('x' * 100000).replace('', 'y' * 100000) }}",
    "translate": "{{ ('x' * 100000).translate({120: 'y' * 100000}) }}",
    "join-filter": "{{ range(100000)|map('string')|join('y' * 100000) }}",
    "join-method": "{{ ('y' * 100000).join(range(100000)|map('string')) }}",
    "concat-doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "plus-doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "list-doubling": (
        "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}"
        "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}"
    ),
    "int-squaring": (
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}"
        "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 1 }}"
    ),
    "list-of-big-strings": "{{ (['y' * 100000] * 100000)|join }}",
    "repeated-reference-list": (
        "{% set a = 'y' * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a, a] }}"
    ),
    "nested-range": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "nested-range-filtered": (
        "{% for i in range(100000) %}{% for j in range(100000) if false %}{% endfor %}"
        "{% endfor %}"
    ),
    "recursive-loop": (
        "{% for x in [1, 2] recursive %}{% if loop.depth < 40 %}"
        "{{ loop([1, 2]) }}{{ loop([1, 2]) }}{% endif %}{% endfor %}"
    ),
    "macro-fan-out": (
        "{% macro f(d) %}{% if d < 40 %}{{ f(d + 1) }}{{ f(d + 1) }}{% endif %}{% endmacro %}"
        "{{ f(0) }}"
    ),
    "select-in-loop": (
        "{% for i in range(100000) %}{{ range(100000)|reject|list|length }}{% endfor %}"
    ),
    "compare-in-loop": (
        "{% set a = 'y' * 99999 %}{% set b = 'y' * 99999 %}"
        "{% for i in range(100000) %}{% if a == b %}{% endif %}{% endfor %}"
    ),
    "batch-fill": "{{ [1]|batch(10**9, 'x')|list }}",
    "slice-count": "{{ [1]|slice(10**9)|list }}",
    "sum-of-lists": "{{ (range(40000)|batch(1)|list)|sum(start=[])|length }}",
    "tojson-indent": "{{ {'a': [1, 2, 3]}|tojson(indent=10**9) }}",
    "to-bytes": "{{ (1).to_bytes(10**9, 'big')|length }}",
    "bytes-center": "{{ 'x'.encode().center(10**9)|length }}",
    "output-loop": "{% for i in range(100000) %}{{ 'y' * 99999 }}{% endfor %}",
    "block-set-capture": (
        "{% set s %}{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}"
        "{{ s|length }}"
    ),
}

# -- sandbox escapes (held before; kept so they stay held) ---------------------------------

SANDBOX_ESCAPES = {
    "class": "{{ ''.__class__ }}",
    "mro-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "attr-filter": "{{ ''|attr('__class__') }}",
    "for-subclasses": "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "cycler-globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner-globals": "{{ joiner.__init__.__globals__ }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].environ }}",
    "namespace-init": "{{ namespace.__init__.__globals__ }}",
    "range-self": "{{ range.__self__ }}",
    "dict-class": "{{ dict.__class__.__subclasses__() }}",
    "self-context": "{{ self._TemplateReference__context }}",
    "self-module": "{{ self.__init__.__globals__ }}",
    "config": "{{ config.items() }}",
    "request": "{{ request.application.__globals__ }}",
    "environ": "{{ environ }}",
    "format-attr": "{{ '{0.__class__}'.format('') }}",
    "format-map-attr": "{{ '{a.__class__.__mro__}'.format_map({'a': ''}) }}",
    "mod-format": "{{ '%s' % ''.__class__ }}",
    "int-class": "{{ (1).__class__.__subclasses__() }}",
    "getattr-subscript": "{{ ''['__class__'] }}",
    "map-attribute": "{{ ['']|map(attribute='__class__')|first }}",
    "list-append": "{{ [].append(1) }}",
    "dict-update": "{{ {}.update(a=1) }}",
    "namespace-dunder": "{{ namespace().__dict__ }}",
    "loop-internals": "{% for x in [1] %}{{ loop._iterator }}{% endfor %}",
    "include-file": "{% include '/etc/passwd' %}",
    "import": "{% import 'os' as os %}{{ os }}",
    "extends": "{% extends '/etc/hostname' %}",
    "from-import": "{% from 'x' import y %}{{ y }}",
}

# -- hostile step ids (the Windows devices are issue 15, item 10) -------------------------

STEP_IDS = {
    "dotdot": "'../evil'",
    "absolute": "'/abs'",
    "fullwidth-solidus": "'a\uff0fb'",
    "rtl-override": "'\u202eevil'",
    "reserved-assets": "assets",
    "too-long": "s" * 65,
    "empty": "''",
    "device-con": "CON",
    "device-nul": "nul",
    "device-aux": "Aux",
    "device-prn": "prn",
    "device-com1": "COM1",
    "device-lpt9": "lpt9",
}

# -- asset path tricks ---------------------------------------------------------------------

ASSET_PATHS = {
    "dotdot": ("../outside.png", "leaves the recipe's folder"),
    "absolute": ("/etc/passwd", "must be relative"),
    "nested-dotdot": ("sub/../../outside.png", "leaves the recipe's folder"),
    "symlink-out": ("link-out.png", "leaves the recipe's folder"),
    "symlink-dev-zero": ("zero.png", "leaves the recipe's folder"),
    "home": ("~/.ssh/id_rsa", "file not found"),
    "windows-drive": ("C:\\\\Windows\\\\win.ini", "must be relative"),
    "unc": ("\\\\\\\\server\\\\share\\\\x.png", "must be relative"),
    "file-url": ("file:///etc/passwd", "file not found"),
    "percent-dotdot": ("%2e%2e/outside.png", "file not found"),
    "fullwidth-dots": ("\uff0e\uff0e\uff0foutside.png", "file not found"),
    "nul-byte": ("a\\0b.png", "not a usable file path"),
    "folder": ("sub", "not a file"),
    "fifo": ("pipe.png", "not a file"),
    "empty-file": ("empty.png", "not a PNG or JPEG"),
    "text-file": ("notes.png", "not a PNG or JPEG"),
    "too-big": ("huge.png", "at most 20 MB"),
    "only-dot": (".", "not a file"),
    "only-dotdot": ("..", "leaves the recipe's folder"),
    "trailing-slash": ("sub/", "not a file"),
    "proc-self": ("/proc/self/environ", "must be relative"),
    "dev-zero": ("/dev/zero", "must be relative"),
}


def _asset_files(folder: Path) -> None:
    """What the asset cases point at: files, a folder, a FIFO, links out."""
    import os

    (folder / "sub").mkdir(exist_ok=True)
    (folder.parent / "outside.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    for name, target in (("link-out.png", folder.parent / "outside.png"),
                         ("zero.png", Path("/dev/zero"))):
        if not (folder / name).is_symlink():
            (folder / name).symlink_to(target)
    if not (folder / "pipe.png").exists():
        os.mkfifo(folder / "pipe.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("not an image")
    with (folder / "huge.png").open("wb") as fh:  # sparse: 21 MB that take no disk
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(21 * 1024 * 1024)


# -- outputs that must stay where they belong --------------------------------------------

HOSTILE_VALUES = [
    "../../escape", "/etc/cron.d/x", "..", ".", "a/../../b", "C:\\Windows\\x",
    "\\\\server\\share", "a\uff0fb", "\uff0e\uff0e\uff0fup", "\u202egpj.exe", "~", "a\u2215b",
    "con", "NUL.txt", "COM1", "x" * 300, "tab\there", "<script>alert(1)</script>",
]

XSS = [
    "<script>alert(1)</script>", '"><img src=x onerror=alert(2)>',
    "</textarea><svg onload=alert(3)>", "javascript:alert(4)//'", "<iframe src=//evil>",
    "'-alert(5)-'", "<a href=\"javascript:alert(6)\">x</a>", "<body onload=alert(7)>",
    "{{7*7}}</title><script>alert(8)</script>", "<style>*{display:none}</style>",
    "<meta http-equiv=refresh content=0;url=//evil>", "<base href=//evil/>",
    "<details open ontoggle=alert(9)>", "<math><mi xlink:href=javascript:alert(10)>",
    "\u2028<script>alert(11)</script>",
]


def _files_under(folder: Path, *allowed: Path) -> list[Path]:
    """Files below ``folder`` outside every ``allowed`` folder (strays)."""
    return [p for p in folder.rglob("*") if p.is_file()
            and not any(p.is_relative_to(a) for a in allowed)]


def _check_matrix(folder: Path, out: str, err: str) -> None:
    strays = _files_under(folder.parent, folder, folder.parent / "std")
    assert strays == [], strays
    made = folder / "out"
    for path in made.rglob("*"):
        rel = path.relative_to(made)
        assert ".." not in rel.parts and len(rel.name) <= 120
        assert not any(c in str(rel) for c in "\u202e\\\uff0f\u2215\t")
    assert len(list((made / "s").rglob("*.jpg"))) == len(HOSTILE_VALUES)


def _check_xss(folder: Path, out: str, err: str) -> None:
    page = (folder / "out" / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text
    for payload in [*XSS, "<b onmouseover=alert(12)>"]:
        if "<" in payload:
            assert payload not in page  # never as markup
    elements = _Elements()
    elements.feed(page)
    assert not {"iframe", "math", "details", "base", "textarea"} & elements.tags
    for tag, name, value in elements.attrs:  # nor as an attribute that runs
        assert not name.startswith("on"), (tag, name, value)
        assert not (value or "").strip().lower().startswith("javascript:"), (tag, name, value)


class _Elements(HTMLParser):
    """The tags and attributes of a page, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += [(tag, name, value) for name, value in attrs]


def _check_name(folder: Path, out: str, err: str) -> None:
    assert _files_under(folder.parent, folder, folder.parent / "std") == []
    (made,) = (folder / "out").iterdir()
    assert made.name == "x" and (made / "manifest.json").exists()


def _check_no_claims(folder: Path, out: str, err: str) -> None:
    assert list((folder / "cache" / "claims").iterdir()) == []


def _fill(folder: Path, run: Runner) -> None:
    run(list(RUN))


def _damage_header(folder: Path, run: Runner) -> None:
    import sqlite3

    _fill(folder, run)
    db = sqlite3.connect(folder / "cache" / "cache.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with (folder / "cache" / "cache.db").open("r+b") as fh:
        fh.write(b"GARBAGE GARBAGE GARBAGE")


def _plant_pickle(folder: Path, run: Runner) -> None:
    import diskcache

    _fill(folder, run)
    (key,) = [n["key"] for n in json.loads((folder / "out" / "manifest.json").read_text())[
        "nodes"]]
    cache = diskcache.Cache(str(folder / "cache"))
    cache.set(f"gen:{key}", {"pickled": True})  # the default Disk pickles a dict
    cache.close()


def _check_pickle_reported(folder: Path, out: str, err: str) -> None:
    assert "is corrupt (it holds a pickle" in err, err
    assert len(list((folder / "out" / "a").rglob("*.jpg"))) == 1  # and it was re-made


def _empty_claim(folder: Path, run: Runner) -> None:
    import os
    import time

    plan = json.loads(run(["plan", "recipe.yaml", "--json", "--backend", "sim"]))
    claims = folder / "cache" / "claims"
    claims.mkdir(parents=True)
    old = time.time() - 60
    for node in plan["nodes"]:
        path = claims / node["provisional_key"]
        path.write_bytes(b"")  # what a crash between create and write left behind
        os.utime(path, (old, old))


FULL_DISK = """
import os
_real_open = os.open
def _full(path, flags, mode=0o777, **kw):
    fd = _real_open(path, flags, mode, **kw)
    if flags & (os.O_WRONLY | os.O_RDWR) and "/claims/" in os.fsdecode(path):
        os.close(fd)
        return _real_open("/dev/full", os.O_WRONLY)
    return fd
os.open = _full
"""

ECHO_TOKEN = "cor/Tok+en=v&l<ue>\"q'~5e7"  # differs under every encoding


def echo_app() -> web.Application:
    """A hostile API: 400 for every image request, echoing the token five ways."""
    forms = [quote(ECHO_TOKEN, safe=""), html.escape(ECHO_TOKEN), json.dumps(ECHO_TOKEN)[1:-1],
             base64.b64encode(f"Bearer {ECHO_TOKEN}".encode()).decode(),
             "".join(f"&#{ord(c)};" for c in ECHO_TOKEN)]

    async def images(request: web.Request) -> web.Response:
        return web.json_response({"error": "bad header: " + " | ".join(forms)}, status=400)

    app = web.Application()
    app.router.add_post("/v1/google-flow/images", images)
    return app


def _check_no_token(folder: Path, out: str, err: str) -> None:
    forms = [ECHO_TOKEN, quote(ECHO_TOKEN, safe=""), html.escape(ECHO_TOKEN),
             json.dumps(ECHO_TOKEN)[1:-1], ECHO_TOKEN[4:14]]
    texts = [p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*")
             if p.is_file() and p.name not in ("recipe.yaml",)]
    assert "invalid request" in (folder / "out" / "manifest.json").read_text()
    for text in [*texts, out, err]:
        for form in forms:
            assert form not in text


def _values(n: int) -> str:
    return ", ".join(str(i) for i in range(n))


def _cases() -> list[Case]:
    cases = [Case("control-validate", VALIDATE, 0,
                  files={"recipe.yaml": _prompt("a {{ 'boat' }}")})]
    for name, template in TEMPLATE_ATTACKS.items():
        cases.append(Case(f"template-{name}", VALIDATE, 2, error="over a limit", where="6:13",
                          files={"recipe.yaml": _prompt(template)}))
    cases.append(Case("template-lipsum", VALIDATE, 2, error="keys must be stable",
                      where="6:13", files={"recipe.yaml": _prompt("{{ lipsum(n=10**6) }}")}))
    big = "y" * 5_000_000
    cases += [
        Case("prompt-20k-rendered", VALIDATE, 2, error="the prompt is 20,000 characters",
             where="7:13", files={"recipe.yaml": f"{HEAD}vars: {{big: {'y' * 20_000}}}\n"
                                  "steps:\n  a:\n    prompt: \"{{ big }}\"\n"}),
        Case("prompt-5MB-rendered", VALIDATE, 2, error="would build more than 100,000",
             where="7:13", files={"recipe.yaml": f"{HEAD}vars: {{big: {big}}}\nsteps:\n"
                                  f"  a:\n    prompt: \"{{{{ big }}}}\"\n"}),
        Case("prompt-5MB-written", VALIDATE, 2, error="at most 10,000 characters",
             where="6:13", files={"recipe.yaml": _prompt(big)}),
        Case("nodes-2M-over-20-steps", VALIDATE, 2, error="more than 100,000 nodes",
             where="9:13", files={"recipe.yaml": HEAD + "steps:\n" + "".join(
                 f"  s{i}:\n    matrix: {{a: [{_values(100)}], b: [{_values(100)}], "
                 f"c: [{_values(10)}]}}\n    prompt: x\n" for i in range(20))}),
        Case("nodes-1M-in-one-step", VALIDATE, 2, error="more than 100,000 nodes",
             where="6:13", files={"recipe.yaml": f"{HEAD}steps:\n  s:\n    matrix: {{"
                                  f"a: [{_values(100)}], b: [{_values(100)}], "
                                  f"c: [{_values(100)}]}}\n    prompt: x\n"}),
    ]
    for name, template in SANDBOX_ESCAPES.items():
        cases.append(Case(f"sandbox-{name}", VALIDATE, 2, error="step 'a': prompt", where="6:13",
                          files={"recipe.yaml": _prompt(template)}))
    laughs = "vars:\n  l0: &l0 [" + ", ".join(["lol"] * 10) + "]\n" + "".join(
        f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 10))
    bomb = "vars:\n  m0: &m0 {" + ", ".join(f"k{j}: 1" for j in range(10)) + "}\n" + "".join(
        f"  m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(10)) + "}\n"
        for i in range(1, 9))
    cases += [
        Case("yaml-billion-laughs", VALIDATE, 2, error="aliases expand to too many values",
             files={"recipe.yaml": HEAD + laughs + "steps: {a: {prompt: x}}\n"}),
        Case("yaml-deep-nesting", VALIDATE, 2, error="exceeded maximum nesting depth",
             files={"recipe.yaml": HEAD + "x: " + "[" * 20000 + "]" * 20000 + "\n"}),
        Case("yaml-self-alias", VALIDATE, 2, error="refers to itself",
             files={"recipe.yaml": HEAD + "steps: &s {a: {prompt: x, matrix: *s}}\n"}),
        Case("yaml-python-tag", VALIDATE, 2, error="unsupported YAML tag", where="4:8",
             files={"recipe.yaml": HEAD + "steps: !!python/object/apply:os.system [id]\n"}),
        Case("yaml-mapping-bomb", VALIDATE, 2, error="aliases expand to too many values",
             files={"recipe.yaml": HEAD + bomb + "steps: {a: {prompt: x}}\n"}),
        Case("yaml-over-64MB", VALIDATE, 2, error="the limit is", where="1:1",
             setup=lambda folder, run: _sparse(folder / "recipe.yaml", 64 * 1024 * 1024 + 1)),
    ]
    for name, step_id in STEP_IDS.items():
        cases.append(Case(f"step-id-{name}", VALIDATE, 2, error="a step id must be", where="5:3",
                          files={"recipe.yaml": f"{HEAD}steps:\n  {step_id}:\n    prompt: x\n"}))
    for name, (path, why) in ASSET_PATHS.items():
        recipe = (f"{HEAD}assets: {{logo: \"{path}\"}}\nsteps:\n  a:\n    prompt: x\n"
                  "    context: [assets.logo]\n")
        cases.append(Case(f"asset-{name}", VALIDATE, 2, error=why, where="4:16",
                          files={"recipe.yaml": recipe},
                          setup=lambda folder, run: _asset_files(folder)))
    values = ", ".join(json.dumps(v) for v in HOSTILE_VALUES)
    cases += [
        Case("matrix-hostile-values", RUN, 0, check=_check_matrix, files={
            "recipe.yaml": f"{HEAD}steps:\n  s:\n    matrix: {{v: [{values}]}}\n"
                           "    prompt: \"value {{ v }}\"\n"}),
        Case("report-xss", RUN, 0, check=_check_xss, files={
            "recipe.yaml": f"{HEAD}vars: {{tag: \"<b onmouseover=alert(12)>\"}}\nsteps:\n"
                           f"  s:\n    matrix: {{p: {json.dumps(XSS)}}}\n"
                           "    prompt: \"{{ p }} {{ tag }}\"\n"}),
        # issue 15, item 1: the recipe's name chooses no folder outside ./out/
        Case("name-escapes-out", ("run", "recipe.yaml", "--plain", "--time-scale", "0.001"), 0,
             check=_check_name, files={"recipe.yaml": "version: 1\nname: ../../../x\n"
                                       "defaults: {count: 1}\nsteps: {a: {prompt: x}}\n"}),
        # item 3: a full disk under the cache, and an empty claim left by a crash
        Case("cache-full-disk", RUN, 1, error="disk full in the cache folder",
             files={"recipe.yaml": _prompt("a boat")}, prelude=FULL_DISK,
             check=_check_no_claims),
        Case("cache-empty-claim", RUN, 0, files={"recipe.yaml": _prompt("a boat")},
             setup=_empty_claim),
        # item 5: a damaged index
        Case("cache-index-damaged-run", RUN, 1, error="is damaged",
             files={"recipe.yaml": _prompt("a boat")}, setup=_damage_header),
        Case("cache-index-damaged-repair", ("cache", "verify", "--repair"), 0,
             files={"recipe.yaml": _prompt("a boat")}, setup=_damage_header),
        Case("cache-index-damaged-clear", ("cache", "clear", "--yes"), 0,
             files={"recipe.yaml": _prompt("a boat")}, setup=_damage_header),
        # item 6: credentials in the API URL
        Case("api-url-credentials", RUN, 2, error="must not hold credentials",
             files={"recipe.yaml": _prompt("a boat")},
             env={"USEAPI_TOKEN": "corpus-token-123", "FLOWPIPE_API_URL":
                  "http://alice:corpus-token-123@127.0.0.1:9/v1/google-flow"}),
        # item 7: a server echoing the token in other encodings
        Case("api-token-echo", RUN, 1, error="did not finish", check=_check_no_token,
             files={"recipe.yaml": f"{HEAD}accounts: [me@example.com]\n"
                                   "steps: {a: {prompt: x}}\n"},
             env={"USEAPI_TOKEN": ECHO_TOKEN, "FLOWPIPE_API_URL": "{echo}/v1/google-flow"}),
        # item 8: a pickle where a record was
        Case("cache-pickle-entry", RUN, 0, files={"recipe.yaml": _prompt("a boat")},
             setup=_plant_pickle, check=_check_pickle_reported),
    ]
    return cases


def _sparse(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)


CASES = _cases()
