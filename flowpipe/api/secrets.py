"""Hiding the API token in every form a server may echo it in.

A server, a proxy or a misconfigured gateway can send the Authorization header back in
an error page: as written, URL-encoded, HTML-escaped, JSON-escaped, in base64 (also
inside ``Basic``/``Bearer`` blobs) or as hex. ``Scrubber`` replaces every such form
with ``***``; text that still decodes to the token after that (a mix of encodings) is
withheld whole. It is applied to every text from the API that flowpipe keeps or shows
(error messages, reasons, kept bodies, log lines), and ``reveals`` lets the client
refuse a successful answer whose kept fields hold the token.
"""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus, unquote, unquote_plus

__all__ = ["MIN_SECRET", "WITHHELD", "Scrubber"]

MIN_SECRET = 6  # shorter "tokens" (test fixtures) would mangle ordinary words
WITHHELD = "*** (text withheld: it holds the API token in an encoded form)"
_B64_CORE = 8  # shortest base64 run searched for: shorter ones match by chance
_B64_RUN = r"[A-Za-z0-9+/_-]*{core}[A-Za-z0-9+/_=-]*"
_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")
_JSON_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_JSON_CHARS = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
               "t": "\t"}


class Scrubber:
    """Hides one secret in text, whatever encoding it was echoed in."""

    def __init__(self, secret: str) -> None:
        self.active = len(secret) >= MIN_SECRET
        self._secret = secret
        forms = _encodings(secret) if self.active else set()
        self._forms = tuple(sorted(forms, key=len, reverse=True))
        self._runs = tuple(
            re.compile(_B64_RUN.format(core=re.escape(core)))
            for core in sorted(_base64_cores(secret) if self.active else (), key=len,
                               reverse=True)
        )

    def __call__(self, text: str) -> str:
        """``text`` with every form of the secret replaced by ``***``."""
        if not self.active or not text:
            return text
        for form in self._forms:
            if form in text:
                text = text.replace(form, "***")
        for run in self._runs:
            text = run.sub("***", text)
        return WITHHELD if _decodes_to(self._secret, text) else text

    def reveals(self, text: str) -> bool:
        """True if ``text`` holds the secret in any form ``__call__`` hides."""
        return self.active and bool(text) and self(text) != text


def _encodings(secret: str) -> set[str]:
    """The secret as servers echo it: escaped, percent-encoded, entity-encoded, hex."""
    url = quote(secret, safe="")
    forms = {
        secret,
        url,
        quote(secret),
        quote_plus(secret),
        quote(url, safe=""),
        html.escape(secret),
        html.escape(secret, quote=False),
        "".join(f"&#{ord(c)};" for c in secret),
        "".join(f"&#x{ord(c):x};" for c in secret),
        "".join(f"&#x{ord(c):X};" for c in secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        "".join(f"\\u{ord(c):04x}" for c in secret),
        "".join(f"\\u{ord(c):04X}" for c in secret),
        secret.encode().hex(),
        secret.encode().hex().upper(),
    }
    forms |= {_PERCENT_HEX.sub(lambda m: m[0].lower(), f) for f in set(forms) if "%" in f}
    return {f for f in forms if len(f) >= MIN_SECRET}


def _base64_cores(secret: str) -> set[str]:
    """The base64 characters that only the secret decides, at each of the 3 alignments."""
    data = secret.encode()
    cores = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for shift in range(3):
            text = encode(b"\0" * shift + data + b"\0\0").decode()
            start = 4 if shift else 0  # the first group mixes in what came before
            end = (shift + len(data)) // 3 * 4  # groups made of the secret's bytes only
            core = text[start:end]
            if len(core) >= _B64_CORE:
                cores.add(core)
    return cores


def _json_unescape(text: str) -> str:
    return _JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else _JSON_CHARS[m[2]], text)


_DECODERS = (html.unescape, unquote, unquote_plus, _json_unescape)


def _decodes_to(secret: str, text: str, depth: int = 3) -> bool:
    """True if undoing up to ``depth`` layers of HTML, percent or JSON escaping, in any
    order, shows ``secret``: what a mix of encodings (or a double one) hides."""
    seen = {text}
    layer = [text]
    for _ in range(depth):
        following = []
        for current in layer:
            for decode in _DECODERS:
                decoded = decode(current)
                if decoded in seen:
                    continue
                if secret in decoded:
                    return True
                seen.add(decoded)
                following.append(decoded)
        layer = following
    return False
