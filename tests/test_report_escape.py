"""escape_control's shortcut (text without anything to escape comes back as it is) escapes
exactly the characters of the character-by-character rule."""
from __future__ import annotations

from ckpm.report import escape_control


def _reference(text: str) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 and ch not in "\n\t" or 0x7F <= o < 0xA0 or 0xD800 <= o <= 0xDFFF:
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


def test_every_character_alone_and_in_text_is_escaped_as_the_rule_says() -> None:
    for o in list(range(0x3000)) + list(range(0xD7F0, 0xE010)) + [0xFEFF, 0xFFFF, 0x10000, 0x10FFFF]:
        ch = chr(o)
        for text in (ch, f"pkg-1800 {ch} 5.3.0", f"{ch}\n{ch}"):
            assert escape_control(text) == _reference(text), hex(o)


def test_plain_text_is_returned_as_it_is() -> None:
    text = "pkg-1800 5.3.0 is not on this machine\tand that is fine\n"
    assert escape_control(text) is text
