"""A module holding every kind of constant the compiler emits."""
# -*- coding: utf-8 -*-

import sys

BIG = 123456789012345678901234567890
NEG_BIG = -98765432109876543210
SMALL = (-5, 0, 1, 256, 257, -6)
FLOATS = (0.0, -0.0, 2.5, 1e300, float("inf"))
COMPLEX = (1 + 2j, -0.5j)
BYTES = (b"", b"x", b"\x00\xffbytes")
TEXT = ("", "a", "é", "ascii text", "non-ascii: héllo", "wide: 漢字", "astral: 𝄞", "\x00nul")
NESTED = ((1, (2, (3, ()))), ("a", ("b",)))
SINGLETONS = (None, True, False, ...)
IDENT = "an_identifier_like_string"


def member(x):
    return x in {1, 2, 3, "four", b"five", 6.0}


def member_str(s):
    return s in {"alpha", "beta", "gamma"}


def closure(n):
    def inner(m):
        return n + m
    return inner


LAMBDA = lambda a, b=2, *c, d, **e: (a, b, c, d, e)  # noqa: E731


def gen(n):
    yield from range(n)
    yield "done"


def comps(n):
    return ([i * i for i in range(n)], {i % 3 for i in range(n)}, {i: str(i) for i in range(n)}, list(x for x in range(n)))


def fstrings(name, value):
    return f"{name!r}: {value:>10.3f} {value=}"


def matcher(obj):
    match obj:
        case {"kind": "point", "x": int(x), "y": int(y)}:
            return ("point", x, y)
        case [first, *rest]:
            return ("seq", first, len(rest))
        case str() | bytes():
            return "text"
        case _:
            return None


class Klass:
    attr = frozenset({"x", "y"})

    def method(self, *, key="k"):
        return key * 2

    @property
    def prop(self):
        return self.attr


async def coroutine(x):
    return x


def summary():
    out = [
        BIG, NEG_BIG, SMALL, FLOATS, COMPLEX, BYTES, TEXT, NESTED, SINGLETONS,
        member(3), member("four"), member(7), member_str("beta"), member_str("delta"),
        closure(3)(4), LAMBDA(1, d=4), list(gen(3)), comps(5), fstrings("v", 2.5),
        matcher({"kind": "point", "x": 1, "y": 2}), matcher([1, 2, 3]), matcher("s"), matcher(4.0),
        Klass().method(), sorted(Klass().prop), repr(-0.0),
    ]
    return out


LETTER_A = "a"


def identities():
    """Identity facts a normal import guarantees."""
    return (
        SINGLETONS[0] is None, SINGLETONS[1] is True, SINGLETONS[3] is ...,
        # The runtime's own small int and empty bytes/str, and one interned
        # 1-char str (no literal right of `is`: that warns when compiled).
        SMALL[2] is int("1"), BYTES[0] is bytes(), TEXT[0] is str(), TEXT[1] is LETTER_A,
        IDENT is sys.intern("an_identifier_like_string"),
    )
