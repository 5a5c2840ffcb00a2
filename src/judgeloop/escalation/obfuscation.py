"""Readings of a text with common disguises undone, so injection rules see what the judge sees.

An LLM reads "I g n o r e", "Ｉｇｎｏｒｅ", "Ig\u200bnore" and a base64 blob as the words they
hide; a regular expression does not. Rules are searched in the text as written and in each of
these readings.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

# Single letters separated by one space, dot, dash, underscore or asterisk: "i g n o r e".
_SPACED_LETTERS = re.compile(r"(?<=\b\w)[ .\-_*·](?=\w\b)")
_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_WHITESPACE = re.compile(r"\s+")
# Decoding every long token costs little; a cap keeps a pathological session cheap.
_MAX_BASE64_TOKENS = 20


def _without_format_characters(text: str) -> str:
    # NFKC folds full-width and other compatibility forms; Cf drops zero-width characters.
    folded = unicodedata.normalize("NFKC", text)
    return "".join(char for char in folded if unicodedata.category(char) != "Cf")


def _decoded_base64(text: str) -> list[str]:
    decoded = []
    for token in _BASE64_TOKEN.findall(text)[:_MAX_BASE64_TOKENS]:
        try:
            plain = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
        if plain.isprintable():
            decoded.append(plain)
    return decoded


def text_readings(text: str) -> list[str]:
    """``text`` itself, then the distinct readings with disguises undone (in that order)."""
    folded = _without_format_characters(text)
    joined = _WHITESPACE.sub(" ", _SPACED_LETTERS.sub("", folded))
    readings = [text, folded, joined, *_decoded_base64(folded)]
    return list(dict.fromkeys(readings))
