"""Functions whose code marshal writes with and without shared references."""

GREETING = "hello, marshal"
TABLE = (1, 2.5, "shared-constant", b"bytes", (3, 4))


def uses_module_constant():
    return GREETING, "shared-constant"


def also_uses_shared():
    return "shared-constant", (3, 4), 10**20


def nested(x):
    def inner(y):
        return lambda z: (x, y, z, "inner-const")

    return inner


class Widget:
    """A class with methods."""

    def method(self, a, *args, key=None, **kw):
        return [a, args, key, kw, frozenset({"a", "b"})]

    @staticmethod
    def static():
        return {"k": 1.5j}


async def coroutine():
    return [i async for i in aiter_of()]


def aiter_of():
    pass
