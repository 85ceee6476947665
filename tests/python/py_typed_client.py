#!/usr/bin/env python3
"""Versile Python 0.8.5 client for a versile-rs object defined with
``#[versile::object]`` (tests/interop_typed.rs).

Usage::

    python py_typed_client.py [--timeout SECONDS] [--call-timeout SECONDS] VRI

The resource at VRI (over VOP PLAIN) must be the ``TypedGateway`` of
tests/interop_typed.rs:

* ``add(a, b)`` -> a + b (two ints; documented "Adds two integers.")
* ``divide(a, b)`` -> a // b; b == 0 raises
  ``VException('division by zero', a)``
* ``greet(name)`` -> ``'hello NAME from HOST'`` (HOST from the call context)
* ``counter()`` -> a new object with ``increment(by)`` -> running total
* ``echo(x)`` -> x
* ``secret()`` -> True, hidden from ``meta.methods()``
* class doc: ``'Typed gateway for the interop tests.\\n'``

Output: the JSON check lines of py_client.py (same runner, imported from
it), exit status 0 only if every check passed.
"""

import argparse
import os
import sys

from py_client import Tester, expect, expect_raises     # noqa: E402
from versile.orb.entity import VException, VCallError  # noqa: E402

METHODS = ('add', 'counter', 'divide', 'echo', 'greet')


def run(t):
    gw = t.connect_checked()
    if gw is None:
        return

    def add():
        r = t.call(gw, 'add', 2, 3)
        expect(r == 5 and type(r) is int, 'add(2, 3) -> %r' % (r,))
        r = t.call(gw, 'add', -(2 ** 40), 1)
        expect(r == -(2 ** 40) + 1, 'add(-2**40, 1) -> %r' % (r,))
        return r
    t.check('add', add)

    def arity():
        expect_raises(lambda: t.call(gw, 'add', 1), VCallError, 'add(1)')
        expect_raises(lambda: t.call(gw, 'add', 1, 2, 3), VCallError,
                      'add(1, 2, 3)')
        t.assert_echoes(gw, 'after arity')
        return 'CALL_ERROR'
    t.check('wrong_arity_is_call_error', arity)

    def types():
        expect_raises(lambda: t.call(gw, 'add', 1, 'two'), VCallError,
                      'add(1, "two")')
        # Out of i64 range: a type error as well.
        expect_raises(lambda: t.call(gw, 'add', 2 ** 64, 1), VCallError,
                      'add(2**64, 1)')
        t.assert_echoes(gw, 'after types')
        return 'CALL_ERROR'
    t.check('wrong_type_is_call_error', types)

    def divide():
        r = t.call(gw, 'divide', 7, 2)
        expect(r == 3, 'divide(7, 2) -> %r' % (r,))
        e = expect_raises(lambda: t.call(gw, 'divide', 7, 0), VException,
                          'divide(7, 0)')
        expect(tuple(e.args) == ('division by zero', 7),
               'exception args %r' % (e.args,))
        t.assert_echoes(gw, 'after exception')
        return repr(e)
    t.check('err_is_call_exception', divide)

    def greet():
        r = t.call(gw, 'greet', 'ann')
        expect(r == 'hello ann from 127.0.0.1', 'greet -> %r' % (r,))
        return r
    t.check('call_context', greet)

    def echo():
        v = (None, True, 2 ** 100, 'æ', b'\x00\x01', (1.5,))
        r = t.call(gw, 'echo', v)
        expect(r == v, 'echo -> %r' % (r,))
        return 'ok'
    t.check('echo_value', echo)

    def counter():
        c = t.call(gw, 'counter')
        r1 = t.call(c, 'increment', 2)
        r2 = t.call(c, 'increment', 3)
        expect((r1, r2) == (2, 5), 'increments -> %r' % ((r1, r2),))
        other = t.call(gw, 'counter')
        r = t.call(other, 'increment', 1)
        expect(r == 1, 'second counter -> %r' % (r,))
        r = t.call(c, 'meta.methods')
        expect(r == ('increment',), 'counter methods -> %r' % (r,))
        return 'ok'
    t.check('object_result', counter)

    def hidden():
        r = t.call(gw, 'secret')
        expect(r is True, 'secret() -> %r' % (r,))
        return r
    t.check('hidden_callable', hidden)

    def methods():
        r = t.call(gw, 'meta.methods')
        expect(r == METHODS, 'methods() -> %r' % (r,))
        return r
    t.check('meta_methods', methods)

    def doc():
        r = t.call(gw, 'meta.doc')
        expect(r == 'Typed gateway for the interop tests.\n',
               'doc() -> %r' % (r,))
        r = t.call(gw, 'meta.doc', 'add')
        expect(r == 'Adds two integers.\n', 'doc("add") -> %r' % (r,))
        r = t.call(gw, 'meta.doc', 'echo')
        expect(r is None, 'doc("echo") -> %r' % (r,))
        e = expect_raises(lambda: t.call(gw, 'meta.doc', 'nope'),
                          VException, 'doc("nope")')
        expect(tuple(e.args) == ('Not an exposed method',),
               'args %r' % (e.args,))
        return 'ok'
    t.check('meta_doc', doc)

    def unknown():
        expect_raises(lambda: t.call(gw, 'no_such_method'), VCallError,
                      'no_such_method()')
        t.assert_echoes(gw, 'at the end')
        return 'ok'
    t.check('unknown_method', unknown)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--timeout', type=float, default=60.0)
    ap.add_argument('--call-timeout', type=float, default=20.0)
    ap.add_argument('vri')
    a = ap.parse_args()
    t = Tester(a.vri, a.call_timeout)
    t.emit({'vri': t.vri, 'scenarios': ['typed']})

    timer = t.start_watchdog(a.timeout)
    t.scenario = 'typed'
    try:
        run(t)
    finally:
        t.close_links()
    timer.cancel()
    t.emit_summary()
    return 0 if t.failed == 0 else 1


if __name__ == '__main__':
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
