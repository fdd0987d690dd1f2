#!/usr/bin/python3
"""idle_conns.py: hold many idle keep-alive connections open against a server.

Opens COUNT TCP connections to HOST:PORT, sends one `GET PATH` on each, reads
the complete response and leaves the connection open and idle. At most BATCH
connections are connecting or waiting for their response at any moment, so the
server's listen backlog never overflows. When every connection has its
response (or the deadline passes) it prints one line

    open OK FAILED

and waits for a line (or EOF) on stdin. It then checks how many connections
the server kept open during the hold, prints

    held STILL_OPEN

and closes everything. bench/proxy/run reads the server's RSS between the two
lines. Bounded: the opening phase stops at --deadline seconds, the hold at
--hold seconds. Standard library only; one selector (epoll) loop.
"""

import argparse
import errno
import resource
import selectors
import socket
import sys
import time

HEAD_MAX = 16384


class Conn:
    """One client connection and what it has read of its one response."""

    __slots__ = ("sock", "state", "buf", "need")

    def __init__(self, sock):
        self.sock = sock
        self.state = "connecting"
        self.buf = b""
        self.need = -1


def raise_nofile(count):
    """Raise the soft open-file limit to the hard limit; fail if too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < count + 64:
        sys.exit("idle_conns: open-file limit %d is below %d connections" % (hard, count))


def response_done(conn):
    """True once conn.buf holds one whole response (Content-Length or chunked)."""
    if conn.need < 0:
        end = conn.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.buf) > HEAD_MAX:
                raise ValueError("response head over %d bytes" % HEAD_MAX)
            return False
        head = conn.buf[:end].decode("latin-1").lower().split("\r\n")
        if not head[0].startswith("http/1.1 200"):
            raise ValueError("status line %r" % head[0])
        length = 0
        chunked = False
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip() == "content-length":
                length = int(value.strip())
            elif name.strip() == "transfer-encoding" and "chunked" in value:
                chunked = True
        conn.buf = conn.buf[end + 4:]
        conn.need = -2 if chunked else length
    if conn.need == -2:
        return conn.buf.endswith(b"0\r\n\r\n")
    return len(conn.buf) >= conn.need


def start_one(sel, host, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    err = sock.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS):
        sock.close()
        return None
    conn = Conn(sock)
    sel.register(sock, selectors.EVENT_WRITE, conn)
    return conn


def step(sel, conn, request):
    """Advance one connection on a readiness event; returns 'ok', 'fail' or None."""
    try:
        if conn.state == "connecting":
            err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                return "fail"
            conn.sock.sendall(request)
            conn.state = "reading"
            sel.modify(conn.sock, selectors.EVENT_READ, conn)
            return None
        data = conn.sock.recv(65536)
        if not data:
            return "fail"
        conn.buf += data
        if response_done(conn):
            return "ok"
    except (OSError, ValueError) as exc:
        print("idle_conns: %s" % exc, file=sys.stderr)
        return "fail"
    return None


def open_all(args):
    """Open args.count connections; returns (open list, failed count)."""
    request = ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % args.path).encode()
    sel = selectors.DefaultSelector()
    done, failed, started, pending = [], 0, 0, 0
    deadline = time.monotonic() + args.deadline
    while len(done) + failed < args.count and time.monotonic() < deadline:
        while pending < args.batch and started < args.count:
            started += 1
            if start_one(sel, args.host, args.port) is None:
                failed += 1
            else:
                pending += 1
        for key, _ in sel.select(timeout=0.2):
            conn = key.data
            result = step(sel, conn, request)
            if result is None:
                continue
            sel.unregister(conn.sock)
            pending -= 1
            if result == "ok":
                done.append(conn)
            else:
                conn.sock.close()
                failed += 1
    for key in list(sel.get_map().values()):
        key.fileobj.close()
        failed += 1
    sel.close()
    return done, failed


def still_open(conns):
    """Count connections the server has not closed (no EOF, no error pending)."""
    alive = 0
    for conn in conns:
        try:
            data = conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if data:
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def main():
    ap = argparse.ArgumentParser(description="hold idle keep-alive connections")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--path", default="/0")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--deadline", type=float, default=60.0)
    ap.add_argument("--hold", type=float, default=60.0)
    args = ap.parse_args()
    if not 0 < args.count <= 100000:
        sys.exit("idle_conns: count must be 1..100000")
    raise_nofile(args.count)
    conns, failed = open_all(args)
    print("open %d %d" % (len(conns), failed), flush=True)
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    sel.select(timeout=args.hold)
    print("held %d" % still_open(conns), flush=True)
    for conn in conns:
        conn.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
