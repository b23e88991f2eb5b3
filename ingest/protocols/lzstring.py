"""lz-string's ``decompressFromBase64`` (pieroxy/lz-string 1.5.0), bounded, for PostHog's ``lz64``.

posthog-js compresses capture bodies with ``LZString.compressToBase64``. Only the decompressor is
needed, and it must be bounded: lz-string output can grow quadratically with its input (every
dictionary entry is the previous one plus a character), so a small body can expand into gigabytes.
``decompress_from_base64`` stops with ``LzStringError`` as soon as the output passes ``max_chars``.
Written here rather than taken from PyPI: the packages there are either unmaintained since 2018
(``lzstring``) or without a history to judge (``lzstring-codec``), and neither has a bound. Checked
against vectors made by the JavaScript original (tests/fixtures/protocols/lz64.json).
"""

from __future__ import annotations

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_VALUE = {char: index for index, char in enumerate(_ALPHABET)}
# URL-encoded bodies may turn '+' into ' ' when a client forgets to escape it.
_VALUE[" "] = _VALUE["+"]


class LzStringError(ValueError):
    """Input that is not lz-string base64, or that decompresses beyond the bound."""


def decompress_from_base64(text: str, max_chars: int) -> str:
    """The string ``LZString.compressToBase64`` was given; ``LzStringError`` when ``text`` is not
    one of its outputs, decodes to invalid UTF-16, or inflates beyond ``max_chars`` characters."""
    if not text:
        return ""
    try:
        values = [_VALUE[char] for char in text]
    except KeyError:
        raise LzStringError("not lz-string base64") from None
    units = _decompress(values, 32, max_chars)
    try:
        return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise LzStringError("the decompressed text is not valid UTF-16") from None


def _decompress(values: list[int], reset_value: int, max_chars: int) -> str:
    length = len(values)
    state = [values[0], reset_value, 1]  # current value, bit position, next index

    def read(count: int) -> int:
        bits, power = 0, 1
        value, position, index = state
        for _ in range(count):
            if value & position:
                bits |= power
            position >>= 1
            if position == 0:
                position = reset_value
                value = values[index] if index < length else 0
                index += 1
            power <<= 1
        state[0], state[1], state[2] = value, position, index
        return bits

    dictionary: list[str] = ["", "", ""]
    first = read(2)
    if first == 2:
        return ""
    if first > 2:
        raise LzStringError("not lz-string data")
    char = chr(read(8 if first == 0 else 16))
    dictionary.append(char)
    word = char
    out = [char]
    total = 1
    enlarge_in, bits_count = 4, 3
    while True:
        if state[2] > length:
            raise LzStringError("lz-string data ends before its end marker")
        code = read(bits_count)
        if code == 2:
            return "".join(out)
        if code < 2:
            dictionary.append(chr(read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in, bits_count = 1 << bits_count, bits_count + 1
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = word + word[0]
        else:
            raise LzStringError("lz-string data refers to an unknown entry")
        total += len(entry)
        if total > max_chars:
            raise LzStringError(f"lz-string data inflates beyond {max_chars} characters")
        out.append(entry)
        dictionary.append(word + entry[0])
        enlarge_in -= 1
        word = entry
        if enlarge_in == 0:
            enlarge_in, bits_count = 1 << bits_count, bits_count + 1
