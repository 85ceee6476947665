#!/usr/bin/env python3
"""Versile Python 0.8.5 client: release of resources and automatic link
close (docs/protocol/vol.md §5.3) against a server offering versile.demo.SimpleGateway
behaviour (``echo`` on the gateway, ``text/echo``, ``math/adder``).

Usage::

    python py_release.py [--timeout SECONDS] VRI
    python py_release.py [--timeout SECONDS] --keepalive MS VRI

For the gateway (``VRI``) and for the resource ``VRI + math/adder/`` it
resolves with a link, makes a few calls, drops every reference, and waits
for the link to close (the server must confirm the client's NOTIFY_DEREF;
then both object tables are empty and the link closes).

With ``--keepalive MS`` it instead resolves the gateway with a link that
requests keep-alive every MS ms (``VLinkKeepAlive(req_time=MS)``, docs/protocol/vol.md
§8), idles for 2 s (Python expires the link after 1.5 x the granted
interval without traffic, and dies on the 6th KEEP_ALIVE it receives), then
checks that the link is still running and ``echo`` works.

Output on stdout, one JSON object per line::

    {"step": NAME, "ok": BOOL, "detail": ...}

then ``done`` once everything ran.  The process then waits for end-of-file
on stdin (so the parent can inspect its own side while this client is still
running) and exits 0 if every step passed, else 1.
"""

import argparse
import gc
import json
import os
import sys
import time
import warnings

warnings.simplefilter('ignore')

from versile.quick import VUrl                              # noqa: E402
from versile.reactor.io.url import VOPInsecureUrlConfig    # noqa: E402

failed = 0


def step(name, ok, detail):
    global failed
    if not ok:
        failed += 1
    sys.stdout.write(json.dumps({'step': name, 'ok': bool(ok),
                                 'detail': detail}) + '\n')
    sys.stdout.flush()


def resolve(vri, timeout):
    pending = VUrl.resolve_with_link(vri, conf=VOPInsecureUrlConfig(),
                                     nowait=True)
    return pending.result(timeout)


def wait_closed(link, timeout):
    start = time.time()
    while time.time() - start < timeout:
        if link.closed:
            return True, time.time() - start
        time.sleep(0.02)
    return False, time.time() - start


def keepalive(base, req_time, timeout):
    from versile.reactor.io.link import VLinkAgentConfig
    from versile.orb.link import VLinkKeepAlive
    conf = VOPInsecureUrlConfig(link_config=VLinkAgentConfig(
        keep_alive=VLinkKeepAlive(req_time=req_time)))
    pending = VUrl.resolve_with_link(base, conf=conf, nowait=True)
    gw, link = pending.result(timeout)
    step('granted', True, link._keep_alive_recv)
    time.sleep(2.0)
    step('alive_after_idle', not link.closed, 'status %r' % (link.status,))
    r = gw.echo('still alive', nowait=True).result(timeout)
    step('echo_after_idle', r == 'still alive', repr(r))
    link.shutdown(force=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--timeout', type=float, default=10.0)
    ap.add_argument('--keepalive', type=int, default=None)
    ap.add_argument('vri')
    a = ap.parse_args()
    base = a.vri if a.vri.endswith('/') else a.vri + '/'
    if a.keepalive is not None:
        keepalive(base, a.keepalive, a.timeout)
        return finish()

    # 1. The gateway itself.
    gw, link = resolve(base, a.timeout)
    r = gw.echo('hello', nowait=True).result(a.timeout)
    step('gateway_echo', r == 'hello', repr(r))
    r = gw.meta.methods(nowait=True).result(a.timeout)
    step('gateway_methods', isinstance(r, tuple) and 'urlget' in r,
         list(r) if isinstance(r, tuple) else repr(r))
    e = gw.urlget(('text', 'echo'), nowait=True).result(a.timeout)
    r = e.echo('via urlget', nowait=True).result(a.timeout)
    step('urlget_echo', r == 'via urlget', repr(r))
    step('still_open_while_held', not link.closed, 'link open')
    del gw, e, r
    gc.collect()
    closed, after = wait_closed(link, a.timeout)
    step('gateway_release_closes_link', closed, '%.3f s' % after)

    # 2. A resource: the VRI client has released the gateway already.
    adder, link = resolve(base + 'math/adder/', a.timeout)
    r1 = adder.add(5, nowait=True).result(a.timeout)
    r2 = adder.add(2 ** 70, nowait=True).result(a.timeout)
    step('adder_add', (r1, r2) == (5, 5 + 2 ** 70), repr((r1, r2)))
    r = adder.reset(nowait=True).result(a.timeout)
    r = adder.result(nowait=True).result(a.timeout)
    step('adder_reset', r == 0, repr(r))
    time.sleep(0.3)
    step('adder_link_open_while_held', not link.closed, 'link open')
    del adder
    gc.collect()
    closed, after = wait_closed(link, a.timeout)
    step('adder_release_closes_link', closed, '%.3f s' % after)
    return finish()


def finish():
    sys.stdout.write('done\n')
    sys.stdout.flush()
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except Exception:
        pass
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    try:
        code = main()
    except Exception as exc:
        step('crashed', False, '%s: %s' % (exc.__class__.__name__, exc))
        code = 1
    sys.stdout.flush()
    os._exit(code)
