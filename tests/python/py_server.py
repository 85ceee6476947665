#!/usr/bin/env python3
"""Versile Python 0.8.5 VOP test server for the versile-rs interop tests.

Usage::

    python py_server.py [--port PORT] [--no-shim] [--ignore-stdin] [--verbose]
                        [--min-send MS]

* Binds a ``VOPService`` to 127.0.0.1:PORT (default 0 = ephemeral port; the
  actual port is read back from the socket).
* Insecure: ``VOPInsecureServiceConfig`` (VOP handshake offers/accepts PLAIN
  only, no VTS/TLS).
* Installs an ``inspect.getargspec`` compatibility shim (Python >= 3.11
  removed it, but ``VDispatchGwFactory.build`` in 0.8.5 still calls it, which
  breaks every ``urlget`` on ``SimpleGateway``; see docs/protocol/vol.md §4.9).
  ``--no-shim`` leaves the defect in place (urlget then always fails).
* ``--min-send MS``: the lowest keep-alive interval the service grants
  (``VLinkKeepAlive(min_send=MS)``, docs/protocol/vol.md §8; Python's default is
  300000 ms).  Links use ``hold_peer=False`` as the service default.

Lines printed on stdout (each flushed):

* ``listening PORT`` -- once, when the service accepts connections.
* ``stopped``        -- when the service has been stopped (just before exit).

Everything else (diagnostics, ``--verbose`` call logging) goes to stderr.

The process stops (``service.stop(True, force=True)``, exit status 0) on
SIGTERM, SIGINT or end-of-file on stdin.  The stdin rule lets a parent that
dies take the server down with it; pass ``--ignore-stdin`` when stdin is not
a pipe that stays open (e.g. started from a shell with ``</dev/null``).

Gateway
-------

Every connection gets a fresh ``TestGateway``.  It is a
``versile.demo.SimpleGateway`` (a ``VDispatcher``), so VRI paths resolve as in
the library demo:

* ``urlget(("text", "echo"))`` -> a new ``versile.demo.Echoer``
  (``echo(arg)`` -> arg)
* ``urlget(("math", "adder"))`` -> a new ``versile.demo.Adder``
  (``add(value)`` -> running sum, ``result()`` -> sum, ``reset()`` -> None)
* any other path -> CALL_ERROR (the VRI client reports
  "URL path did not resolve")

On top of that the gateway (the resource for the root path ``vop://h:p/``)
publishes these test methods (all ``show=True``, so ``meta.methods()`` lists
them, sorted, together with ``urlget``):

=============================== =============================================
``echo(x)``                     returns ``x`` unchanged
``echo_args(*args)``            returns the tuple of all arguments
``raise_vexc(*args)``           raises ``VException(*args)`` -> CALL_EXCEPTION
``fail()``                      raises ``ValueError`` -> CALL_ERROR
``call_back(obj, method, *a)``  calls ``obj.<method>(*a)`` on the client's
                                object ``obj`` (a remote reference) while the
                                client's call is still running, and returns
                                that call's result; a VException raised by the
                                client object is passed on as CALL_EXCEPTION
``keep(obj)``                   stores ``obj`` in the gateway, returns None
``call_kept(method, *a)``       calls ``<method>(*a)`` on the stored object and
                                returns the result; VException('nothing kept')
                                if nothing is stored
``drop_kept()``                 forgets the stored object (the server then
                                releases the reference: NOTIFY_DEREF); returns
                                True if something was stored, else False
``slow(seconds, tag)``          sleeps ``seconds`` (int or float, capped at
                                30 s) and returns ``tag``
``urlget(path)``                the ``VDispatcher`` resolution described above
=============================== =============================================

Meta calls: ``meta.methods()`` -> the sorted tuple of the names above;
``meta.doc()`` -> the TestGateway class doc (normalised: first line, newline);
``meta.doc('echo')`` -> the ``echo`` docstring (methods published with
``doc=True``: echo, echo_args, slow); other methods -> None.
"""

import argparse
import collections
import inspect
import os
import signal
import sys
import threading
import time
import warnings

warnings.simplefilter('ignore')

# Upper bound for slow(); keeps a misbehaving test from wedging a worker.
MAX_SLOW = 30.0


def install_getargspec_shim():
    """Provide inspect.getargspec (removed in Python 3.11) for versile."""
    if hasattr(inspect, 'getargspec'):
        return False
    ArgSpec = collections.namedtuple('ArgSpec',
                                     'args varargs keywords defaults')

    def getargspec(f):
        s = inspect.getfullargspec(f)
        return ArgSpec(s.args, s.varargs, s.varkw, s.defaults)
    inspect.getargspec = getargspec
    return True


def log(msg):
    sys.stderr.write('py_server: %s\n' % msg)
    sys.stderr.flush()


def build_gateway_class(verbose):
    """Define TestGateway (imports versile lazily, after the shim)."""
    import versile.demo
    from versile.orb.entity import VException
    from versile.orb.external import publish, doc

    def trace(name, args):
        if verbose:
            log('call %s%r' % (name, tuple(args)))

    @doc
    class TestGateway(versile.demo.SimpleGateway):
        """Interop test gateway (versile-rs py_server.py)."""

        def __init__(self):
            super(TestGateway, self).__init__()
            self._kept_lock = threading.Lock()
            self._kept = None

        @publish(show=True, doc=True)
        def echo(self, x):
            """Returns the received argument."""
            trace('echo', (x,))
            return x

        @publish(show=True, doc=True)
        def echo_args(self, *args):
            """Returns all arguments as a tuple."""
            trace('echo_args', args)
            return args

        @publish(show=True)
        def raise_vexc(self, *args):
            trace('raise_vexc', args)
            raise VException(*args)

        @publish(show=True)
        def fail(self):
            trace('fail', ())
            raise ValueError('fail() called: a plain Python exception')

        @publish(show=True)
        def call_back(self, obj, method, *args):
            trace('call_back', (obj, method) + args)
            # obj is a proxy of an object owned by the client; this is a
            # blocking remote call over the same link, made from the worker
            # thread that runs the client's call.
            return getattr(obj, method)(*args)

        @publish(show=True)
        def keep(self, obj):
            trace('keep', (obj,))
            with self._kept_lock:
                self._kept = obj
            return None

        @publish(show=True)
        def call_kept(self, method, *args):
            trace('call_kept', (method,) + args)
            with self._kept_lock:
                obj = self._kept
            if obj is None:
                raise VException('nothing kept')
            return getattr(obj, method)(*args)

        @publish(show=True)
        def drop_kept(self):
            trace('drop_kept', ())
            with self._kept_lock:
                had = self._kept is not None
                self._kept = None
            return had

        @publish(show=True, doc=True)
        def slow(self, seconds, tag):
            """Sleeps the given number of seconds, then returns tag."""
            trace('slow', (seconds, tag))
            time.sleep(min(float(seconds), MAX_SLOW))
            return tag

    return TestGateway


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--port', type=int, default=0,
                    help='TCP port on 127.0.0.1 (0 = ephemeral)')
    ap.add_argument('--no-shim', action='store_true',
                    help='do not install the inspect.getargspec shim')
    ap.add_argument('--ignore-stdin', action='store_true',
                    help='do not stop on end-of-file on stdin')
    ap.add_argument('--verbose', action='store_true',
                    help='log every test-gateway call on stderr')
    ap.add_argument('--min-send', type=int, default=None,
                    help='lowest keep-alive interval granted (ms)')
    a = ap.parse_args()

    if not a.no_shim and install_getargspec_shim():
        log('installed inspect.getargspec shim')

    from versile.quick import VOPService
    from versile.reactor.io.service import VOPInsecureServiceConfig

    TestGateway = build_gateway_class(a.verbose)

    # Pre-bound listening socket so that port 0 works; read the real port.
    sock = VOPService.create_socket(interface='127.0.0.1', port=a.port)
    port = sock.getsockname()[1]
    conf = VOPInsecureServiceConfig(iface='127.0.0.1', port=port)
    if a.min_send is not None:
        from versile.reactor.io.link import VLinkAgentConfig
        from versile.orb.link import VLinkKeepAlive
        conf.link_config = VLinkAgentConfig(
            hold_peer=False, keep_alive=VLinkKeepAlive(min_send=a.min_send))
    service = VOPService(lambda: TestGateway(), auth=None, sock=sock,
                         conf=conf)
    service.start()
    service.wait(active=True, timeout=10.0)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if not a.ignore_stdin:
        def watch_stdin():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except Exception:
                pass
            log('stdin closed')
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()

    sys.stdout.write('listening %d\n' % port)
    sys.stdout.flush()

    # Event.wait with a timeout keeps the main thread responsive to signals.
    while not stop.wait(0.5):
        pass

    log('stopping')
    try:
        service.stop(True, force=True)
        service.wait(stopped=True, timeout=5.0)
    except Exception as e:
        log('stop: %s: %s' % (e.__class__.__name__, e))
    sys.stdout.write('stopped\n')
    sys.stdout.flush()
    # Do not wait for lingering non-daemon reactor/worker threads.
    os._exit(0)


if __name__ == '__main__':
    main()
