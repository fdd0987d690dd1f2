"""Helpers of the system tests: run firebreak, talk raw HTTP/1.1, read metrics.

- free_port(): a TCP port on 127.0.0.1 nobody listens on right now.
- to_yaml(obj): the YAML text of a config dict (block style, what a user writes).
- base_config(...): a complete config for one service in front of endpoints.
- Firebreak: one `firebreak serve -c FILE` process with its config file, its
  stderr in a file, readiness by GET /healthz, SIGHUP reload, SIGTERM stop.
- RawConn: a client socket that sends bytes as given and parses responses
  strictly (framing errors of the proxy's responses fail the test).
- request(): one request on a fresh connection; parse_metrics(): Prometheus text.
- Nginx: a Debian nginx with its own prefix, in the foreground.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

READY_TIMEOUT = 10.0


def free_port():
    """A port on 127.0.0.1 that is free now (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused_port():
    """A port with nothing listening (connect gets ECONNREFUSED)."""
    return free_port()


# config -----------------------------------------------------------------------
_PLAIN = re.compile(r"^[A-Za-z0-9_./:@-][A-Za-z0-9_./:@ -]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "null", "~"}


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if s == "off":
        return s  # the documented spelling of access_log: off
    if _PLAIN.match(s) and s.lower() not in _YAML_WORDS and not s.endswith(" ") \
            and ": " not in s and not re.fullmatch(r"[0-9.]+", s):
        return s
    return json.dumps(s)


def to_yaml(obj, indent=0):
    """YAML text for nested dicts/lists of scalars, in block style."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 2))
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 2))
            elif isinstance(v, list):
                out.append("%s%s: [%s]" % (pad, k, ", ".join(json.dumps(str(x)) for x in v)))
            else:
                out.append("%s%s: %s" % (pad, k, _scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            body = to_yaml(item, indent + 2).split("\n")
            out.append("%s- %s" % (pad, body[0].lstrip()))
            out.extend(body[1:])
    else:
        out.append(pad + _scalar(obj))
    return "\n".join(line for line in out if line != "")


def base_config(workdir, endpoints, timeouts=None, limits=None, access_log="off",
                workers=2, releases=None):
    """A full config: one service `app`, release v1 on endpoints, short drain."""
    t = {"request_header": "10s", "body_idle": "30s", "keepalive_idle": "60s",
         "upstream_connect": "2s", "upstream_response": "30s", "drain": "5s"}
    t.update(timeouts or {})
    lim = {"request_line": "8KiB", "header_bytes": "16KiB", "header_fields": 100}
    lim.update(limits or {})
    return {
        "listen": "127.0.0.1:%d" % free_port(),
        "workers": workers,
        "access_log": access_log,
        "admin": {"listen": "127.0.0.1:%d" % free_port()},
        "state": os.path.join(workdir, "state"),
        "limits": lim,
        "timeouts": t,
        "services": [{
            "name": "app",
            "match": {"host": "*", "path_prefix": "/"},
            "releases": releases or [{"name": "v1", "endpoints": list(endpoints)}],
            "stable": "v1",
        }],
    }


def _hostport(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


# the process ------------------------------------------------------------------
class StartError(Exception):
    pass


class Firebreak:
    """One firebreak gateway process run from a config dict."""

    def __init__(self, binary, workdir, config, name="firebreak"):
        self.binary = binary
        self.workdir = workdir
        self.config = config
        self.name = name
        self.config_path = os.path.join(workdir, name + ".yaml")
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self.stdout_path = os.path.join(workdir, name + ".stdout")
        self.proc = None
        self.returncode = None
        self.write_config()

    # addresses
    @property
    def host(self):
        return _hostport(self.config["listen"])[0]

    @property
    def port(self):
        return _hostport(self.config["listen"])[1]

    @property
    def admin_port(self):
        return _hostport(self.config["admin"]["listen"])[1]

    @property
    def pid(self):
        return self.proc.pid

    def write_config(self, config=None, text=None):
        """Write the config file (from a dict, or raw text) atomically."""
        if config is not None:
            self.config = config
        if text is None:
            text = to_yaml(self.config) + "\n"
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def start(self, timeout=READY_TIMEOUT):
        os.makedirs(self.config.get("state", os.path.join(self.workdir, "state")),
                    exist_ok=True)
        self._err = open(self.stderr_path, "ab")
        self._out = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, cwd=self.workdir)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise StartError("firebreak exited with %d before it was ready:\n%s"
                                 % (rc, self.stderr_tail()))
            try:
                status, _ = self.admin_get("/healthz", timeout=1.0)
                if status == 200:
                    return
                last = "healthz answered %d" % status
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise StartError("firebreak not ready after %.0fs (%s):\n%s"
                         % (timeout, last, self.stderr_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def admin_get(self, path, timeout=5.0):
        """(status, body bytes) of GET http://ADMIN/path."""
        url = "http://127.0.0.1:%d%s" % (self.admin_port, path)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metrics(self):
        status, body = self.admin_get("/metrics")
        assert status == 200, "GET /metrics answered %d" % status
        return parse_metrics(body.decode())

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, config=None, text=None):
        """Rewrite the config (when given) and send SIGHUP."""
        if config is not None or text is not None:
            self.write_config(config, text)
        self.proc.send_signal(signal.SIGHUP)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, n=40):
        lines = self.stderr_text().splitlines()
        return "\n".join(lines[-n:])

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, grace=None):
        """SIGTERM, wait up to grace (drain + 5 s), then SIGKILL; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            if grace is None:
                grace = parse_duration(self.config.get("timeouts", {}).get("drain", "30s")) + 5
            self.proc.send_signal(signal.SIGTERM)
            if self.wait_exit(grace) is None:
                self.proc.kill()
                self.proc.wait(5)
                self.returncode = "killed after %.0fs" % grace
        if self.returncode is None:
            self.returncode = self.proc.returncode
        for f in (self._err, self._out):
            f.close()
        return self.returncode

    def sanitizer_report(self):
        """Sanitizer findings in stderr (AddressSanitizer, LeakSanitizer, UBSan), or ''."""
        text = self.stderr_text()
        keys = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                "SUMMARY: UndefinedBehaviorSanitizer")
        hits = [i for i, line in enumerate(text.splitlines()) if any(k in line for k in keys)]
        if not hits:
            return ""
        lines = text.splitlines()
        return "\n".join(lines[hits[0]:hits[0] + 40])


def parse_duration(text):
    """Seconds in a duration like 500ms, 2s, 1m."""
    if isinstance(text, (int, float)):
        return float(text)
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", str(text))
    if not m:
        return 30.0
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


# raw client -------------------------------------------------------------------
class Response:
    def __init__(self, status, reason, version, headers, body, head):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers      # [(name, value)]
        self.body = body            # bytes (b"" when hashed)
        self.head = head            # raw head bytes
        self.body_len = len(body)
        self.body_sha256 = None

    def get(self, name, default=None):
        vals = self.get_all(name)
        return vals[0] if vals else default

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, self.reason, self.body[:200])


class ClosedError(Exception):
    """The connection ended before a complete response."""


class RawConn:
    """A client connection that sends raw bytes and parses responses strictly."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def send_pieces(self, pieces, delay=0.0):
        """Send each piece in its own write, delay seconds apart; stop quietly
        when the peer has closed (the caller then reads its answer). Returns
        True when everything was sent."""
        for p in pieces:
            if delay:
                time.sleep(delay)
            try:
                self.send(p)
            except (BrokenPipeError, ConnectionResetError):
                return False
        return True

    def _fill(self):
        if self.eof:
            raise ClosedError("connection closed (buffered %r)" % bytes(self.buf[:200]))
        try:
            data = self.sock.recv(1 << 18)
        except ConnectionResetError:
            self.eof = self.reset = True
            raise ClosedError("connection reset")
        if not data:
            self.eof = True
            raise ClosedError("connection closed (buffered %r)" % bytes(self.buf[:200]))
        self.buf += data

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            assert len(self.buf) < 65536, "response line too long"
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_exact(self, n):
        """Exactly n bytes (for WebSocket frames after a 101)."""
        return self._exact(n)

    def read_head(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[: i + 4])
                del self.buf[: i + 4]
                return head
            assert len(self.buf) < 1 << 20, "response head too long"
            self._fill()

    def read_response(self, method="GET", sink=None):
        """Read one response (a 1xx is returned on its own).

        sink: when given, body bytes go to sink(bytes) and Response.body stays
        empty (for large bodies); body_len and body_sha256 are set either way.
        """
        head = self.read_head()
        lines = head[:-4].split(b"\r\n")
        m = re.fullmatch(rb"HTTP/(1\.[01]) ([0-9]{3}) ?(.*)", lines[0])
        assert m, "bad status line %r" % lines[0]
        status = int(m.group(2))
        headers = []
        for line in lines[1:]:
            assert line and line[:1] not in (b" ", b"\t"), "bad field line %r" % line
            name, sep, value = line.partition(b":")
            assert sep and re.fullmatch(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", name), \
                "bad field name in %r" % line
            assert b"\r" not in value and b"\0" not in value, "bad value in %r" % line
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        r = Response(status, m.group(3).decode("latin-1"), m.group(1).decode(), headers,
                     b"", head)
        h = hashlib.sha256()
        parts = []
        total = [0]

        def take(data):
            h.update(data)
            total[0] += len(data)
            if sink:
                sink(data)
            else:
                parts.append(data)

        te = r.get_all("transfer-encoding")
        cl = r.get_all("content-length")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif te:
            assert not cl, "response has both Transfer-Encoding and Content-Length"
            assert [v.lower() for v in te] == ["chunked"], "response TE %r" % te
            self._read_chunked(take)
        elif cl:
            assert len(set(cl)) == 1 and re.fullmatch(r"[0-9]+", cl[0]), "response CL %r" % cl
            left = int(cl[0])
            while left:
                if not self.buf:
                    self._fill()
                piece = bytes(self.buf[: min(left, len(self.buf))])
                del self.buf[: len(piece)]
                take(piece)
                left -= len(piece)
        else:
            while True:  # delimited by close
                if self.buf:
                    take(bytes(self.buf))
                    self.buf.clear()
                try:
                    self._fill()
                except ClosedError:
                    break
        r.body = b"".join(parts)
        r.body_len = total[0]
        r.body_sha256 = h.hexdigest()
        return r

    def _read_chunked(self, take):
        while True:
            line = self._line()
            size_text = line.split(b";", 1)[0]
            assert re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text), "chunk line %r" % line
            size = int(size_text, 16)
            if size == 0:
                break
            left = size
            while left:
                if not self.buf:
                    self._fill()
                piece = bytes(self.buf[: min(left, len(self.buf))])
                del self.buf[: len(piece)]
                take(piece)
                left -= len(piece)
            assert self._exact(2) == b"\r\n", "chunk not followed by CRLF"
        while self._line():
            pass

    def read_final(self, method="GET", sink=None):
        """Read responses until a final (non-1xx or 101) one; return (interim, final)."""
        interim = []
        while True:
            r = self.read_response(method, sink)
            if 100 <= r.status < 200 and r.status != 101:
                interim.append(r)
                continue
            return interim, r

    def read_until_eof(self, timeout=5.0):
        """Everything until the peer closes; (bytes, closed) where closed is False
        when the timeout passed with the connection still open."""
        deadline = time.monotonic() + timeout
        out = bytes(self.buf)
        self.buf.clear()
        if self.eof:
            return out, True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out, False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                self.eof = self.reset = True
                return out, True
            if not data:
                self.eof = True
                return out, True
            out += data


def request(port, method="GET", path="/echo", headers=None, body=None, host="app.test",
            timeout=10.0, sink=None):
    """One request on a fresh connection (Connection: close); return the Response."""
    hdrs = [("Host", host)]
    hdrs += list(headers or [])
    if body is not None and not any(n.lower() in ("content-length", "transfer-encoding")
                                    for n, _ in hdrs):
        hdrs.append(("Content-Length", str(len(body))))
    if not any(n.lower() == "connection" for n, _ in hdrs):
        hdrs.append(("Connection", "close"))
    data = build_request(method, path, hdrs, body)
    with RawConn(port, timeout=timeout) as c:
        c.send(data)
        _, r = c.read_final(method, sink)
        return r


def build_request(method, path, headers, body=None, version="HTTP/1.1"):
    head = "%s %s %s\r\n" % (method, path, version)
    head += "".join("%s: %s\r\n" % (n, v) for n, v in headers)
    data = (head + "\r\n").encode("latin-1")
    if body:
        data += body
    return data


def get(port, path, headers=None, **kw):
    return request(port, "GET", path, headers, **kw)


def ws_handshake_request(path="/ws", host="app.test", key="dGhlIHNhbXBsZSBub25jZQ=="):
    """The bytes of a WebSocket opening handshake (RFC 6455 section 1.3 sample key)."""
    return build_request("GET", path, [("Host", host), ("Upgrade", "websocket"),
                                       ("Connection", "Upgrade"),
                                       ("Sec-WebSocket-Key", key),
                                       ("Sec-WebSocket-Version", "13")])


WS_SAMPLE_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3


# metrics ----------------------------------------------------------------------
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


class Metrics:
    """Samples of a Prometheus text page: metrics.get(name, **labels)."""

    def __init__(self, samples, types):
        self.samples = samples  # [(name, {labels}, value)]
        self.types = types      # {family: type}

    def find(self, name, **labels):
        return [(lab, v) for n, lab, v in self.samples if n == name
                and all(lab.get(k) == str(x) for k, x in labels.items())]

    def value(self, name, **labels):
        """Sum of the samples of name matching labels (0 when none)."""
        return sum(v for _, v in self.find(name, **labels))

    def names(self):
        return {n for n, _, _ in self.samples}


def parse_metrics(text):
    samples = []
    types = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = _SAMPLE.match(line)
        assert m, "bad metrics line %r" % line
        labels = {}
        if m.group(3):
            pos = 0
            body = m.group(3)
            while pos < len(body):
                lm = _LABEL.match(body, pos)
                assert lm, "bad labels in %r" % line
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        value = m.group(4)
        samples.append((m.group(1), labels, float(value.replace("+Inf", "inf"))))
    return Metrics(samples, types)


# nginx ------------------------------------------------------------------------
NGINX = "/usr/sbin/nginx"


class Nginx:
    """A Debian nginx in the foreground with its own prefix and a given server block."""

    def __init__(self, workdir, server_body):
        self.prefix = os.path.join(workdir, "nginx")
        for d in ("logs", "tmp", "conf"):
            os.makedirs(os.path.join(self.prefix, d), exist_ok=True)
        self.port = free_port()
        p = self.prefix
        self.conf = os.path.join(p, "conf", "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("""daemon off;
master_process off;
worker_processes 1;
pid %(p)s/logs/nginx.pid;
error_log %(p)s/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(p)s/tmp/body;
    proxy_temp_path %(p)s/tmp/proxy;
    fastcgi_temp_path %(p)s/tmp/fastcgi;
    uwsgi_temp_path %(p)s/tmp/uwsgi;
    scgi_temp_path %(p)s/tmp/scgi;
    keepalive_requests 10000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:%(port)d;
%(body)s
    }
}
""" % {"p": p, "port": self.port, "body": server_body})
        self.proc = None

    @staticmethod
    def available():
        return os.access(NGINX, os.X_OK)

    def start(self, timeout=10.0):
        self._log = open(os.path.join(self.prefix, "logs", "stderr"), "ab")
        self.proc = subprocess.Popen([NGINX, "-p", self.prefix, "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError("nginx exited with %d: %s" % (self.proc.returncode,
                                                              self.log_tail()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise StartError("nginx not listening after %.0fs: %s" % (timeout, self.log_tail()))

    def log_tail(self):
        out = []
        for name in ("stderr", "error.log"):
            try:
                with open(os.path.join(self.prefix, "logs", name), "rb") as f:
                    out.append(f.read()[-2000:].decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self._log.close()


def which(name):
    return shutil.which(name)


def header_values(pairs, name):
    """Values of name (case-insensitive) in a list of [name, value] pairs."""
    name = name.lower()
    return [v for n, v in pairs if n.lower() == name]


def header_names(pairs):
    return {n.lower() for n, _ in pairs}
