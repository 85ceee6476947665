#!/usr/bin/env python3
"""Versile Python 0.8.5 VRI test client for the versile-rs interop tests.

Usage::

    python py_client.py [--timeout SECONDS] [--call-timeout SECONDS]
                        SCENARIOS VRI

* SCENARIOS: a scenario name, a comma-separated list of names, or ``all``
  (every scenario, in the order listed below); ``--list`` prints them.
* VRI: the base VRI of the server under test, e.g. ``vop://127.0.0.1:4433/``
  (a missing trailing slash is added).  The client connects insecurely
  (``VOPInsecureUrlConfig``: VOP handshake offers PLAIN only).

Output on stdout, one JSON object per line:

* first ``{"vri": VRI, "scenarios": [names...]}``
* one ``{"check": NAME, "ok": BOOL, "detail": ...}`` per check; NAME is
  ``<scenario>/<check>``; detail is a string (a repr of the observed value or
  of the exception)
* last ``{"summary": {"passed": N, "failed": M}}``

Exit status 0 only if every check passed (1 = some check failed,
2 = usage error, 3 = the overall ``--timeout`` expired; then a failed
``watchdog`` check and the summary are still printed).

Requirements on the server under test (what tests/python/py_server.py
serves; a Rust server must provide the same to run all scenarios):

* the root resource (``VRI`` itself) is a gateway publishing ``echo(x)``,
  ``echo_args(*args)``, ``raise_vexc(*args)``, ``fail()``,
  ``call_back(obj, method, *args)``, ``keep(obj)``,
  ``call_kept(method, *args)``, ``drop_kept()``, ``slow(seconds, tag)``
  and ``urlget(path)`` (see py_server.py for their semantics);
  ``meta.doc('echo')`` must return a string;
* ``urlget``: ``("text", "echo")`` -> an Echoer (``echo``),
  ``("math", "adder")`` -> a new Adder per resolution (``add``, ``result``,
  ``reset``); anything else fails.

Scenarios (see the functions named ``scenario_<name>``):

* ``echo_types``  -- round trips of many value types through ``echo`` on the
  gateway and on ``text/echo/``; value and type must survive
* ``adder``       -- two independent Adders via ``math/adder/``
* ``errors``      -- call errors, exceptions, arity errors, bad VRI paths,
  meta calls; the link keeps working afterwards
* ``callbacks``   -- the server calls objects owned by this client
  (during a call, and later through a kept reference); identity of
  references passed back and forth
* ``concurrency`` -- 16 threads x 50 echo calls on one link and on 16
  links; pipelining (a fast call overtakes a slow one)

To add a scenario, write ``def scenario_NAME(t):`` using ``t.check`` and
``t.connect`` and add it to ``SCENARIOS``.
"""

import argparse
import json
import os
import random
import sys
import threading
import time
import traceback
import warnings
from decimal import Decimal

warnings.simplefilter('ignore')

from versile.quick import VUrl, VExternal, publish          # noqa: E402
from versile.reactor.io.url import VOPInsecureUrlConfig    # noqa: E402
from versile.reactor.io.url import VOPUrlConfig            # noqa: E402

# The client configuration: PLAIN only unless --vts (then Python's default,
# VTS only, anonymous client).
URL_CONFIG = VOPInsecureUrlConfig
from versile.orb.entity import VException, VCallError      # noqa: E402
from versile.orb.url import VUrlException                  # noqa: E402


class CheckFailed(Exception):
    """Raised by a check body to fail with an explanatory detail."""


def expect(cond, detail):
    if not cond:
        raise CheckFailed(detail)


# ---------------------------------------------------------------------------
# Test runner
# ---------------------------------------------------------------------------


class Tester(object):
    """Holds the base VRI, runs checks, prints results, tracks links."""

    def __init__(self, vri, call_timeout):
        self.vri = vri if vri.endswith('/') else vri + '/'
        self.call_timeout = call_timeout
        self.scenario = '?'
        self.passed = 0
        self.failed = 0
        self.out_lock = threading.Lock()
        self.links = []

    # -- output -----------------------------------------------------------

    def emit(self, obj):
        with self.out_lock:
            sys.stdout.write(json.dumps(obj, ensure_ascii=True) + '\n')
            sys.stdout.flush()

    def record(self, name, ok, detail):
        with self.out_lock:
            if ok:
                self.passed += 1
            else:
                self.failed += 1
        self.emit({'check': '%s/%s' % (self.scenario, name), 'ok': ok,
                   'detail': detail})

    def check(self, name, body):
        """Run body(); it passes unless it raises.  Its return value (or
        the exception) becomes the detail."""
        try:
            r = body()
        except CheckFailed as e:
            self.record(name, False, str(e))
            return False
        except Exception as e:
            self.record(name, False, 'unexpected %s: %s' % (
                e.__class__.__name__, short(e)) + '\n' +
                traceback.format_exc(limit=4))
            return False
        self.record(name, True, short(r) if r is not None else 'ok')
        return True

    def emit_summary(self):
        self.emit({'summary': {'passed': self.passed, 'failed': self.failed}})

    def start_watchdog(self, timeout):
        """Gives up after timeout seconds (records a failed check, prints
        the summary, exits 3); returns the timer, to cancel when done."""
        def watchdog():
            self.scenario = 'watchdog'
            self.record('overall_timeout', False,
                        'gave up after %.0f s' % timeout)
            self.emit_summary()
            os._exit(3)
        timer = threading.Timer(timeout, watchdog)
        timer.daemon = True
        timer.start()
        return timer

    # -- connections and calls ---------------------------------------------

    def connect(self, rel=''):
        """Resolve VRI + rel; returns (resource, link).  The link is shut
        down at the end of the scenario."""
        pending = VUrl.resolve_with_link(self.vri + rel,
                                         conf=URL_CONFIG(),
                                         nowait=True)
        res, link = pending.result(self.call_timeout)
        self.links.append(link)
        return res, link

    def connect_checked(self, rel=''):
        """connect() run as the check 'connect': the resource, or None if
        that check failed."""
        st = {}

        def connect():
            st['res'], _ = self.connect(rel)
            return 'connected'
        return st['res'] if self.check('connect', connect) else None

    def assert_echoes(self, gw, tag):
        """The link still works: gw.echo(tag) answers tag."""
        r = self.call(gw, 'echo', tag)
        expect(r == tag, 'link broken: echo(%r) -> %r' % (tag, r))

    def call(self, obj, method, *args):
        """Remote call with a bounded wait (Python calls have no timeout)."""
        target = obj.meta if method.startswith('meta.') else obj
        name = method[5:] if method.startswith('meta.') else method
        return getattr(target, name)(*args, nowait=True).result(
            self.call_timeout)

    def close_links(self):
        for link in self.links:
            try:
                link.shutdown(force=True)
            except Exception:
                pass
        self.links = []


def short(v, limit=300):
    if isinstance(v, BaseException):
        s = '%s%r' % (type(v).__name__, tuple(v.args))
    else:
        s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= limit else s[:limit] + '...(%d chars)' % len(s)


def expect_raises(fn, exc_type, what):
    """Run fn(); it must raise exc_type.  Returns the exception."""
    try:
        r = fn()
    except exc_type as e:
        return e
    except Exception as e:
        raise CheckFailed('%s: expected %s, got %s: %s' % (
            what, exc_type.__name__, e.__class__.__name__, short(e)))
    raise CheckFailed('%s: expected %s, returned %s' % (
        what, exc_type.__name__, short(r)))


# ---------------------------------------------------------------------------
# Value comparison
# ---------------------------------------------------------------------------


def same_value(a, b):
    """Equality that also requires equal types, recursively (so True != 1,
    1.0 != 1, tuple vs VException are told apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, VException):
        return same_value(tuple(a.args), tuple(b.args))
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same_value(x, y)
                                        for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    return a == b


def echo_values():
    """(label, value) pairs for echo_types."""
    rnd = random.Random(20240505)
    return [
        ('none', None),
        ('true', True),
        ('false', False),
        ('int_0', 0),
        ('int_-1', -1),
        ('int_237', 237),
        ('int_238', 238),
        ('int_-2', -2),
        ('int_2^64', 2 ** 64),
        ('int_-2^64', -(2 ** 64)),
        ('int_2^200', 2 ** 200),
        ('int_-2^300', -(2 ** 300)),
        ('float_1.5', 1.5),
        ('float_0.1', 0.1),
        ('float_-2.25', -2.25),
        ('float_1e300', 1e300),
        ('float_5e-324', 5e-324),
        ('decimal_10.30', Decimal('10.30')),
        ('decimal_-1e-40', Decimal('-1E-40')),
        ('bytes_empty', b''),
        ('bytes_0..255', bytes(range(256))),
        ('bytes_1MiB_random', rnd.randbytes(1 << 20)),
        ('str_empty', ''),
        ('str_hello', 'Hello'),
        ('str_unicode', 'æøå 日本 🎉'),
        ('str_nul', 'a\x00b'),
        ('str_long', 'versile ' * 10000),
        ('tuple_empty', ()),
        ('tuple_nested', ((1, (2, (3, ()))), 'x')),
        ('tuple_1000_ints', tuple(range(-500, 500))),
        ('tuple_mixed', (None, True, 1, 'a', b'b', 1.5, (2,))),
        ('vexception', VException('boom', 42, (1, b'x'))),
        ('vexception_empty', VException()),
        ('tuple_with_vexception', (1, VException('inner'))),
    ]


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------


def scenario_echo_types(t):
    targets = [('gw', ''), ('text_echo', 'text/echo/')]
    for tname, rel in targets:
        res = {}

        def connect(rel=rel, res=res):
            res['obj'], _ = t.connect(rel)
            return 'resolved %s' % (t.vri + rel)
        if not t.check('%s/connect' % tname, connect):
            continue
        obj = res['obj']
        for label, value in echo_values():
            def body(value=value):
                r = t.call(obj, 'echo', value)
                expect(same_value(r, value), 'sent %s (%s), got %s (%s)' % (
                    short(value), type(value).__name__, short(r),
                    type(r).__name__))
                return '%s round trip' % type(r).__name__
            t.check('%s/%s' % (tname, label), body)


def scenario_adder(t):
    st = {}

    def resolve_two():
        st['a'], _ = t.connect('math/adder/')
        st['b'], _ = t.connect('math/adder/')
        return 'two adders resolved'
    if not t.check('resolve_twice', resolve_two):
        return
    a, b = st['a'], st['b']

    def add_a():
        expect(t.call(a, 'add', 5) == 5, 'add(5) != 5')
        r = t.call(a, 'add', 7)
        expect(r == 12, 'add(7) returned %r, expected 12' % (r,))
        return r
    t.check('add_5_7', add_a)
    t.check('result_a', lambda: expect(
        t.call(a, 'result') == 12, 'result() != 12') or 12)

    def independent():
        r = t.call(b, 'result')
        expect(r == 0, 'second adder result() = %r, expected 0' % (r,))
        r = t.call(b, 'add', 100)
        expect(r == 100, 'second adder add(100) = %r' % (r,))
        r = t.call(a, 'result')
        expect(r == 12, 'first adder changed to %r' % (r,))
        return 'independent'
    t.check('independent_instances', independent)

    def reset():
        r = t.call(a, 'reset')
        expect(r is None, 'reset() returned %r' % (r,))
        r = t.call(a, 'result')
        expect(r == 0, 'result() after reset = %r' % (r,))
        r = t.call(a, 'add', -3)
        expect(r == -3, 'add(-3) after reset = %r' % (r,))
        return 'reset ok'
    t.check('reset', reset)

    def big():
        r = t.call(b, 'add', 2 ** 70)
        expect(r == 100 + 2 ** 70, 'add(2**70) = %r' % (r,))
        return r
    t.check('bigint_sum', big)


def scenario_errors(t):
    gw = t.connect_checked()
    if gw is None:
        return

    def unknown_method():
        e = expect_raises(lambda: t.call(gw, 'no_such_method', 1),
                          VCallError, 'no_such_method(1)')
        t.assert_echoes(gw, 'after unknown')
        return repr(e)
    t.check('unknown_method', unknown_method)

    def too_few():
        e = expect_raises(lambda: t.call(gw, 'echo'), VCallError,
                          'echo()')
        t.assert_echoes(gw, 'after too few')
        return repr(e)
    t.check('arity_too_few', too_few)

    def too_many():
        e = expect_raises(lambda: t.call(gw, 'echo', 1, 2), VCallError,
                          'echo(1, 2)')
        t.assert_echoes(gw, 'after too many')
        return repr(e)
    t.check('arity_too_many', too_many)

    def vexc():
        e = expect_raises(lambda: t.call(gw, 'raise_vexc', 'bad', 7, (b'x',)),
                          VException, 'raise_vexc(...)')
        expect(tuple(e.args) == ('bad', 7, (b'x',)),
               'exception args %r' % (e.args,))
        t.assert_echoes(gw, 'after vexc')
        return repr(e)
    t.check('raise_vexception', vexc)

    def vexc_empty():
        e = expect_raises(lambda: t.call(gw, 'raise_vexc'), VException,
                          'raise_vexc()')
        expect(tuple(e.args) == (), 'exception args %r' % (e.args,))
        return repr(e)
    t.check('raise_vexception_empty', vexc_empty)

    def fail():
        e = expect_raises(lambda: t.call(gw, 'fail'), VCallError, 'fail()')
        t.assert_echoes(gw, 'after fail')
        return repr(e)
    t.check('python_exception_is_call_error', fail)

    def echo_args():
        r = t.call(gw, 'echo_args', 1, 'two', None, (3,))
        expect(r == (1, 'two', None, (3,)), 'echo_args -> %r' % (r,))
        r = t.call(gw, 'echo_args')
        expect(r == (), 'echo_args() -> %r' % (r,))
        return 'ok'
    t.check('echo_args', echo_args)

    def bad_path(rel):
        def body():
            e = expect_raises(lambda: t.connect(rel), VUrlException,
                              'resolve %s' % rel)
            expect('did not resolve' in str(e),
                   'unexpected message %r' % (str(e),))
            return repr(e)
        return body
    t.check('bad_path_no_such', bad_path('no/such/'))
    t.check('bad_path_partial', bad_path('text/'))
    t.check('bad_path_too_long', bad_path('text/echo/extra/'))

    def urlget_direct():
        e = t.call(gw, 'urlget', ('text', 'echo'))
        r = t.call(e, 'echo', 'via urlget')
        expect(r == 'via urlget', 'echo -> %r' % (r,))
        # docs/protocol/vol.md §4.9: no match -> CALL_ERROR
        expect_raises(lambda: t.call(gw, 'urlget', ('no', 'such')),
                      VCallError, 'urlget(no/such)')
        return 'ok'
    t.check('urlget_direct_call', urlget_direct)

    def vri_method():
        # vop://h:p/echo : query name "echo" on the root, no arguments
        # (Python drops query arguments), so this is an arity error...
        # use a resource method without arguments instead.
        pending = VUrl.resolve_with_link(t.vri + 'math/adder/result',
                                         conf=URL_CONFIG(),
                                         nowait=True)
        r, link = pending.result(t.call_timeout)
        t.links.append(link)
        expect(r == 0, 'math/adder/result -> %r' % (r,))
        return r
    t.check('vri_query_name', vri_method)

    def meta_methods():
        r = t.call(gw, 'meta.methods')
        expect(isinstance(r, tuple), 'methods() -> %r' % (r,))
        expect(all(isinstance(x, str) for x in r), 'non-string names')
        expect(list(r) == sorted(r), 'not sorted: %r' % (r,))
        for name in ('echo', 'urlget', 'raise_vexc', 'call_back'):
            expect(name in r, '%s missing from %r' % (name, r))
        return r
    t.check('meta_methods', meta_methods)

    def meta_doc():
        r = t.call(gw, 'meta.doc')
        expect(r is None or isinstance(r, str), 'doc() -> %r' % (r,))
        return r
    t.check('meta_doc', meta_doc)

    def meta_doc_echo():
        r = t.call(gw, 'meta.doc', 'echo')
        expect(isinstance(r, str) and r, 'doc("echo") -> %r' % (r,))
        return r
    t.check('meta_doc_method', meta_doc_echo)

    def meta_doc_unknown():
        # docs/protocol/vol.md §4.3: CALL_EXCEPTION VException("Not an exposed method")
        e = expect_raises(lambda: t.call(gw, 'meta.doc', 'no_such_method'),
                          VException, 'doc("no_such_method")')
        expect(tuple(e.args) == ('Not an exposed method',),
               'exception args %r' % (e.args,))
        return e
    t.check('meta_doc_unknown_method', meta_doc_unknown)

    def meta_unknown():
        e = expect_raises(lambda: t.call(gw, 'meta.no_such_meta'),
                          VCallError, 'meta.no_such_meta()')
        t.assert_echoes(gw, 'after meta errors')
        return repr(e)
    t.check('meta_unknown', meta_unknown)

    def echoer_meta():
        e, _ = t.connect('text/echo/')
        r = t.call(e, 'meta.methods')
        expect(r == ('echo',), 'Echoer methods() -> %r' % (r,))
        return r
    t.check('echoer_meta_methods', echoer_meta)


class ClientObject(VExternal):
    """Object owned by this client, called back by the server."""

    def __init__(self):
        super(ClientObject, self).__init__()
        self.calls = []
        self.lock = threading.Lock()

    @publish(show=True)
    def twice(self, x):
        with self.lock:
            self.calls.append(('twice', x))
        return 2 * x

    @publish(show=True)
    def concat(self, *args):
        with self.lock:
            self.calls.append(('concat', args))
        return ''.join(str(a) for a in args)

    @publish(show=True)
    def refuse(self, *args):
        raise VException('refused by client', *args)


def scenario_callbacks(t):
    gw = t.connect_checked()
    if gw is None:
        return
    obj = ClientObject()

    def call_back():
        r = t.call(gw, 'call_back', obj, 'twice', 21)
        expect(r == 42, 'call_back(twice, 21) -> %r' % (r,))
        expect(('twice', 21) in obj.calls, 'client object not called')
        r = t.call(gw, 'call_back', obj, 'concat', 'a', 1, None)
        expect(r == 'a1None', 'call_back(concat) -> %r' % (r,))
        return 'ok'
    t.check('call_back', call_back)

    def call_back_exception():
        e = expect_raises(lambda: t.call(gw, 'call_back', obj, 'refuse', 5),
                          VException, 'call_back(refuse)')
        expect(tuple(e.args) == ('refused by client', 5),
               'args %r' % (e.args,))
        return repr(e)
    t.check('call_back_exception', call_back_exception)

    def call_back_unknown():
        expect_raises(lambda: t.call(gw, 'call_back', obj, 'nope'),
                      VCallError, 'call_back(nope)')
        return 'ok'
    t.check('call_back_unknown_method', call_back_unknown)

    def keep():
        other = ClientObject()
        r = t.call(gw, 'keep', other)
        expect(r is None, 'keep -> %r' % (r,))
        r = t.call(gw, 'call_kept', 'twice', 5)
        expect(r == 10, 'call_kept(twice, 5) -> %r' % (r,))
        r = t.call(gw, 'call_kept', 'twice', 'ab')
        expect(r == 'abab', 'call_kept(twice, "ab") -> %r' % (r,))
        expect(len(other.calls) == 2, 'calls %r' % (other.calls,))
        r = t.call(gw, 'drop_kept')
        expect(r is True, 'drop_kept -> %r' % (r,))
        r = t.call(gw, 'drop_kept')
        expect(r is False, 'second drop_kept -> %r' % (r,))
        e = expect_raises(lambda: t.call(gw, 'call_kept', 'twice', 1),
                          VException, 'call_kept after drop')
        return 'ok; then %r' % (e,)
    t.check('keep_call_drop', keep)

    def own_object_identity():
        # An object of ours sent to the server and echoed back must arrive
        # as a reference to our own object (FC out, FD back).
        r = t.call(gw, 'echo', obj)
        target = getattr(r, '_v_object', r)
        expect(target is obj, 'echo(obj) returned %r' % (r,))
        r = t.call(gw, 'echo', (obj, obj))
        expect(all(getattr(x, '_v_object', x) is obj for x in r),
               'echo((obj, obj)) -> %r' % (r,))
        return 'same object'
    t.check('own_object_identity', own_object_identity)

    def remote_object_identity():
        # A server object passed back to the server comes back as the same
        # remote reference.
        e = t.call(gw, 'urlget', ('text', 'echo'))
        r = t.call(gw, 'echo', e)
        expect(r is e or r == e, 'echo(server obj) -> %r' % (r,))
        r = t.call(e, 'echo', e)
        expect(r is e or r == e, 'e.echo(e) -> %r' % (r,))
        return 'same reference'
    t.check('remote_object_identity', remote_object_identity)

    def link_alive():
        r = t.call(gw, 'echo', 'still here')
        expect(r == 'still here', 'echo -> %r' % (r,))
        return 'ok'
    t.check('link_alive', link_alive)


def run_threads(n, fn):
    """Run fn(i) in n threads; returns the list of errors (strings)."""
    errors = []
    lock = threading.Lock()

    def wrap(i):
        try:
            fn(i)
        except Exception as e:
            with lock:
                errors.append('thread %d: %s: %s' % (
                    i, e.__class__.__name__, short(e)))
    threads = [threading.Thread(target=wrap, args=(i,), daemon=True)
               for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


def scenario_concurrency(t):
    n_threads, n_calls = 16, 50

    def same_link():
        gw, _ = t.connect()

        def work(i):
            for j in range(n_calls):
                v = (i, j, 'x' * (j % 7), bytes([i, j]))
                r = t.call(gw, 'echo', v)
                if r != v:
                    raise CheckFailed('echo(%r) -> %r' % (v, r))
        errors = run_threads(n_threads, work)
        expect(not errors, '; '.join(errors[:5]))
        return '%d calls' % (n_threads * n_calls)
    t.check('same_link_16x50', same_link)

    def separate_links():
        gws = [None] * n_threads

        def work(i):
            gws[i], _ = t.connect()
            for j in range(n_calls):
                v = (j, 'link %d' % i)
                r = t.call(gws[i], 'echo', v)
                if r != v:
                    raise CheckFailed('echo(%r) -> %r' % (v, r))
        errors = run_threads(n_threads, work)
        expect(not errors, '; '.join(errors[:5]))
        return '%d links x %d calls' % (n_threads, n_calls)
    t.check('separate_links_16x50', separate_links)

    def pipelining():
        gw, _ = t.connect()
        start = time.time()
        slow = gw.slow(1.0, 'slow done', nowait=True)
        fast = t.call(gw, 'echo', 'fast')
        fast_time = time.time() - start
        expect(fast == 'fast', 'echo -> %r' % (fast,))
        expect(not slow.has_result(),
               'slow call finished before the fast one')
        r = slow.result(t.call_timeout)
        expect(r == 'slow done', 'slow -> %r' % (r,))
        return 'fast reply after %.3f s, slow after %.3f s' % (
            fast_time, time.time() - start)
    t.check('pipelining', pipelining)

    def many_outstanding():
        gw, _ = t.connect()
        pend = [(i, gw.echo(i, nowait=True)) for i in range(200)]
        bad = [(i, p.result(t.call_timeout)) for i, p in pend]
        bad = [(i, r) for i, r in bad if r != i]
        expect(not bad, 'mismatches %r' % (bad[:5],))
        return '200 outstanding calls'
    t.check('many_outstanding_calls', many_outstanding)


SCENARIOS = [
    ('echo_types', scenario_echo_types),
    ('adder', scenario_adder),
    ('errors', scenario_errors),
    ('callbacks', scenario_callbacks),
    ('concurrency', scenario_concurrency),
]


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main():
    names = [n for n, _ in SCENARIOS]
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--timeout', type=float, default=150.0,
                    help='overall time limit in seconds (default 150)')
    ap.add_argument('--call-timeout', type=float, default=20.0,
                    help='limit for one call or resolution (default 20)')
    ap.add_argument('--vts', action='store_true',
                    help='connect over VTS (VOPUrlConfig) instead of PLAIN')
    ap.add_argument('--list', action='store_true',
                    help='list scenario names and exit')
    ap.add_argument('scenarios', nargs='?', help='NAME[,NAME...] or all')
    ap.add_argument('vri', nargs='?', help='base VRI, vop://host:port/')
    a = ap.parse_args()
    if a.vts:
        global URL_CONFIG
        URL_CONFIG = VOPUrlConfig
    if a.list:
        print('\n'.join(names))
        return 0
    if not a.scenarios or not a.vri:
        ap.print_usage(sys.stderr)
        return 2
    wanted = names if a.scenarios == 'all' else a.scenarios.split(',')
    unknown = [n for n in wanted if n not in names]
    if unknown:
        sys.stderr.write('unknown scenario(s): %s (known: %s)\n'
                         % (', '.join(unknown), ', '.join(names)))
        return 2

    t = Tester(a.vri, a.call_timeout)
    t.emit({'vri': t.vri, 'scenarios': wanted})

    timer = t.start_watchdog(a.timeout)

    funcs = dict(SCENARIOS)
    for name in wanted:
        t.scenario = name
        try:
            funcs[name](t)
        except Exception as e:
            t.record('scenario_crashed', False, '%s: %s\n%s' % (
                e.__class__.__name__, short(e), traceback.format_exc()))
        finally:
            t.close_links()
    timer.cancel()
    t.emit_summary()
    return 0 if t.failed == 0 else 1


if __name__ == '__main__':
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Do not wait for lingering non-daemon reactor/worker threads.
    os._exit(code)
