#!/usr/bin/env python3
"""Versile Python 0.8.5 VTS peer for the versile-rs VTS interop tests.

Usage::

    python py_vts_peer.py server KEY_PEM
    python py_vts_peer.py client VRI [CLIENT_KEY_PEM]
    python py_vts_peer.py connect VRI [CLIENT_KEY_PEM]

``server``: a ``VOPService`` with the RSA key from KEY_PEM and the default
``VOPServiceConfig`` (VTS only), serving the ``py_server.py`` test gateway
on 127.0.0.1 (ephemeral port). Prints ``listening PORT``; stops on EOF on
stdin. Every connection's transport credentials are logged on stderr.

``client``: resolves VRI with ``VUrl`` and the default ``VOPUrlConfig()``
(VTS only), optionally with a client key, then runs checks against the
gateway's ``echo`` method: value types, a 1 MiB bytes value, 20 concurrent
calls, a second link. Prints one JSON line per check and a final
``{"summary": {"passed": N, "failed": M}}``; exits 0 when all passed.

``connect``: one resolution of VRI (as ``client``) and one ``echo`` call,
bounded by 20 s; prints ``{"connected": true}`` or ``{"connected": false,
"error": "..."}`` and exits 0 either way (for tests where the server is
expected to refuse the client).
"""

import json
import os
import sys
import threading
import time
import traceback
import warnings

warnings.simplefilter('ignore')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def load_key(path):
    from versile.crypto.x509 import VX509Crypto
    with open(path, 'rb') as f:
        return VX509Crypto.import_private_key(f.read())


def server(key_path):
    import py_server
    py_server.install_getargspec_shim()
    from versile.quick import VOPService
    from versile.reactor.io.service import VOPServiceConfig
    key = load_key(key_path)
    gateway_class = py_server.build_gateway_class(False)
    sock = VOPService.create_socket(interface='127.0.0.1', port=0)
    port = sock.getsockname()[1]
    service = VOPService(lambda: gateway_class(), auth=None, key=key,
                         sock=sock,
                         conf=VOPServiceConfig(iface='127.0.0.1', port=port))
    service.start()
    service.wait(active=True, timeout=10.0)
    sys.stdout.write('listening %d\n' % port)
    sys.stdout.flush()
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except Exception:
        pass
    service.stop(True, force=True)
    sys.stdout.write('stopped\n')
    sys.stdout.flush()
    return 0


def client(vri, key_path=None):
    from versile.quick import VUrl
    from versile.reactor.io.url import VOPUrlConfig
    key = load_key(key_path) if key_path else None
    timeout = 60.0
    passed = [0, 0]

    def check(name, f):
        try:
            detail = f()
            ok = True
        except Exception as e:
            ok, detail = False, '%s: %s\n%s' % (e.__class__.__name__, e,
                                                traceback.format_exc())
        passed[0 if ok else 1] += 1
        print(json.dumps({'check': name, 'ok': ok, 'detail': str(detail)[:300]}))
        sys.stdout.flush()

    def resolve():
        p = VUrl.resolve_with_link(vri, key=key, conf=VOPUrlConfig(),
                                   nowait=True)
        return p.result(timeout)

    gw, link = resolve()

    def call(*args):
        return gw.echo(*args, nowait=True).result(timeout)

    def types():
        for v in [None, True, 5, -(2 ** 70), 'hello VTS \u00e6', b'\x00\xff',
                  (1, ('a', b'b'), None), 1.5]:
            r = call(v)
            if r != v:
                raise AssertionError('%r -> %r' % (v, r))
        return 'ok'
    check('echo_types', types)

    def big():
        data = os.urandom(1024 * 1024)
        t = time.time()
        r = call(data)
        if r != data:
            raise AssertionError('1 MiB mismatch')
        return '%.2f s' % (time.time() - t)
    check('echo_1mib', big)

    def concurrent():
        pend = [gw.echo(i, nowait=True) for i in range(20)]
        res = [p.result(timeout) for p in pend]
        if res != list(range(20)):
            raise AssertionError(repr(res))
        return 'ok'
    check('echo_concurrent', concurrent)

    def second_link():
        gw2, link2 = resolve()
        try:
            r = gw2.echo('second', nowait=True).result(timeout)
            if r != 'second':
                raise AssertionError(repr(r))
        finally:
            link2.shutdown()
        return 'ok'
    check('second_link', second_link)

    link.shutdown()
    print(json.dumps({'summary': {'passed': passed[0], 'failed': passed[1]}}))
    sys.stdout.flush()
    return 0 if passed[1] == 0 else 1


def connect(vri, key_path=None):
    from versile.quick import VUrl
    from versile.reactor.io.url import VOPUrlConfig
    key = load_key(key_path) if key_path else None
    try:
        p = VUrl.resolve_with_link(vri, key=key, conf=VOPUrlConfig(),
                                   nowait=True)
        gw, link = p.result(20.0)
        r = gw.echo('hi', nowait=True).result(20.0)
        if r != 'hi':
            raise AssertionError(repr(r))
        link.shutdown()
        print(json.dumps({'connected': True}))
    except BaseException as e:
        print(json.dumps({'connected': False,
                          'error': '%s: %s' % (e.__class__.__name__, e)}))
    sys.stdout.flush()
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == 'connect':
        return connect(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    if len(sys.argv) >= 3 and sys.argv[1] == 'server':
        return server(sys.argv[2])
    if len(sys.argv) >= 3 and sys.argv[1] == 'client':
        return client(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
