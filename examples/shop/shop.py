#!/usr/bin/python3
"""A small web shop, the application `make demo` deploys behind firebreak.

    shop.py --release v1|v2 --port N --db PATH [--host 127.0.0.1]

Both releases keep their data in ONE SQLite file (WAL, busy timeout), as
releases of a real application share one production database.

HTTP:
    GET  /                      HTML page: products and an order form (a little JS)
    GET  /healthz               {"ok": true, "release": ...}
    GET  /api/products          {"products": [{"id", "name", "price"}, ...]}
    GET  /api/orders?user=U     {"orders": [ORDER, ...]} of user U, newest first
    GET  /api/orders/{id}       ORDER
    POST /api/orders            body {"user": U, "items": [{"product": id, "qty": n}, ...]},
                                the user also in the X-User-Id header; 201 with
                                Location: /api/orders/{id} and the ORDER
ORDER: {"id", "user", "items": [{"product", "qty", "price"}], "total", "discount",
        "pay", "release", "created"}; money in cents.

The two releases:
    v1  healthy: total = sum(price * qty), no discount.
    v2  the "discount at checkout" feature: 10% off orders over 50.00, kept in
        the order's discount column; the customer pays total - discount. It
        ships with two faults a real deploy can have:
        - about 30% of POST /api/orders answer 500
          {"error": "column discount does not exist"} (a migration that did
          not run everywhere); which ones is decided by a hash of the user and
          the process's request counter, so a run is repeatable;
        - on the orders that get the discount, the discount is also taken off
          the stored total, so it is applied twice: the stored total no longer
          equals sum(price * qty) over the order's items.
"""

import argparse
import hashlib
import json
import re
import signal
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, urlsplit

PRODUCTS = [
    (1, "Espresso beans, 1 kg", 2490),
    (2, "Pour-over kettle", 3900),
    (3, "Ceramic dripper", 1850),
    (4, "Paper filters (100)", 590),
    (5, "Burr grinder", 8900),
    (6, "Milk jug", 1290),
    (7, "Tasting cups (set of 4)", 2200),
    (8, "Scale with timer", 4500),
]
DISCOUNT_OVER = 5000        # cents: v2 gives 10% off orders over 50.00
DISCOUNT_PCT = 10
V2_FAIL_PERCENT = 30        # share of v2's POST /api/orders that answer 500
MAX_BODY = 64 * 1024
MAX_ITEMS = 50
MAX_QTY = 100
USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, total INTEGER NOT NULL,
    discount INTEGER NOT NULL DEFAULT 0, release TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS order_items (
    order_id INTEGER NOT NULL REFERENCES orders(id), product INTEGER NOT NULL,
    qty INTEGER NOT NULL, price INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_user ON orders(user);
CREATE INDEX IF NOT EXISTS items_order ON order_items(order_id);
"""


class BadRequest(Exception):
    pass


class Shop:
    """The shop's data and rules; one SQLite connection per thread."""

    def __init__(self, release, db_path):
        self.release = release
        self.db_path = db_path
        self.local = threading.local()
        self.counter = 0
        self.counter_lock = threading.Lock()
        self.setup()

    def db(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA foreign_keys = ON")
            self.local.conn = conn
        return conn

    def setup(self):
        """Creates the schema and seeds the products when the file is new."""
        conn = self.db()
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.executemany("INSERT OR IGNORE INTO products (id, name, price) VALUES (?, ?, ?)",
                             PRODUCTS)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def products(self):
        rows = self.db().execute("SELECT id, name, price FROM products ORDER BY id").fetchall()
        return [{"id": r[0], "name": r[1], "price": r[2]} for r in rows]

    def order(self, oid):
        conn = self.db()
        row = conn.execute("SELECT id, user, total, discount, release, created FROM orders "
                           "WHERE id = ?", (oid,)).fetchone()
        if not row:
            return None
        items = conn.execute("SELECT product, qty, price FROM order_items WHERE order_id = ? "
                             "ORDER BY rowid", (oid,)).fetchall()
        return {"id": row[0], "user": row[1], "total": row[2], "discount": row[3],
                "pay": row[2] - row[3], "release": row[4], "created": row[5],
                "items": [{"product": p, "qty": q, "price": pr} for p, q, pr in items]}

    def orders_of(self, user):
        ids = self.db().execute("SELECT id FROM orders WHERE user = ? ORDER BY id DESC LIMIT 20",
                                (user,)).fetchall()
        return [self.order(i[0]) for i in ids]

    def next_count(self):
        with self.counter_lock:
            self.counter += 1
            return self.counter

    def migration_missing(self, user, n):
        """v2's first fault: deterministic per (user, request counter)."""
        h = hashlib.sha256(("%s:%d" % (user, n)).encode()).digest()
        return int.from_bytes(h[:4], "big") % 100 < V2_FAIL_PERCENT

    def place(self, user, items):
        """Stores an order; returns it. Raises BadRequest for a bad order."""
        prices = {p["id"]: p["price"] for p in self.products()}
        lines = []
        for i, it in enumerate(items):
            if not isinstance(it, dict):
                raise BadRequest("items[%d] must be an object {product, qty}" % i)
            pid, qty = it.get("product"), it.get("qty", 1)
            if not isinstance(pid, int) or isinstance(pid, bool) or pid not in prices:
                raise BadRequest("items[%d].product: no such product" % i)
            if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= MAX_QTY:
                raise BadRequest("items[%d].qty must be a whole number from 1 to %d"
                                 % (i, MAX_QTY))
            lines.append((pid, qty, prices[pid]))
        subtotal = sum(q * p for _, q, p in lines)
        total, discount = subtotal, 0
        if self.release == "v2" and subtotal > DISCOUNT_OVER:
            discount = subtotal * DISCOUNT_PCT // 100
            total = subtotal - discount   # the second fault: taken off here and again at payment
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conn = self.db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute("INSERT INTO orders (user, total, discount, release, created) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (user, total, discount, self.release, created))
            oid = cur.lastrowid
            conn.executemany("INSERT INTO order_items (order_id, product, qty, price) "
                             "VALUES (?, ?, ?, ?)", [(oid, p, q, pr) for p, q, pr in lines])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return self.order(oid)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Coffee shop</title>
<style>
body{font-family:sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem;border-bottom:1px solid #ddd}
td.n{text-align:right}input{width:3.5rem}#out{white-space:pre-wrap;background:#f4f4f4;padding:.5rem}
.rel{color:#777;font-size:.85rem}
</style></head><body>
<h1>Coffee shop</h1>
<p class="rel">release RELEASE</p>
<form id="f">
<label>Your name <input id="user" style="width:10rem" value="guest" required></label>
<table><thead><tr><th>Product</th><th>Price</th><th>Qty</th></tr></thead>
<tbody id="rows"></tbody></table>
<p><button>Place order</button></p></form>
<h2>Your orders</h2><div id="out">none yet</div>
<script>
const eur = c => (c / 100).toFixed(2);
async function load() {
  const r = await fetch('/api/products'); const j = await r.json();
  document.getElementById('rows').innerHTML = j.products.map(p =>
    `<tr><td>${p.name}</td><td class="n">${eur(p.price)}</td>` +
    `<td><input type="number" min="0" max="100" value="0" data-id="${p.id}"></td></tr>`).join('');
}
async function orders() {
  const u = document.getElementById('user').value;
  const r = await fetch('/api/orders?user=' + encodeURIComponent(u), {headers: {'X-User-Id': u}});
  const j = await r.json();
  document.getElementById('out').textContent = j.orders.length ? j.orders.map(o =>
    `#${o.id}  total ${eur(o.total)}  discount ${eur(o.discount)}  paid ${eur(o.pay)}`).join('\\n')
    : 'none yet';
}
document.getElementById('f').onsubmit = async e => {
  e.preventDefault();
  const u = document.getElementById('user').value;
  const items = [...document.querySelectorAll('input[data-id]')]
    .filter(i => +i.value > 0).map(i => ({product: +i.dataset.id, qty: +i.value}));
  const r = await fetch('/api/orders', {method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-User-Id': u},
    body: JSON.stringify({user: u, items})});
  const j = await r.json();
  if (!r.ok) { document.getElementById('out').textContent = 'error: ' + j.error; return; }
  orders();
};
load();
</script></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shop"
    shop = None  # set by main

    def log_message(self, fmt, *args):  # quiet: the demo prints what matters
        pass

    def send(self, status, obj=None, ctype="application/json", extra=None):
        body = (json.dumps(obj) + "\n").encode() if ctype == "application/json" else obj
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Shop-Release", self.shop.release)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlsplit(self.path)
        m = re.fullmatch(r"/api/orders/([0-9]{1,18})", url.path)
        if url.path == "/":
            page = PAGE.replace("RELEASE", self.shop.release).encode()
            self.send(200, page, "text/html; charset=utf-8")
        elif url.path == "/healthz":
            self.send(200, {"ok": True, "release": self.shop.release})
        elif url.path == "/api/products":
            self.send(200, {"products": self.shop.products()})
        elif url.path == "/api/orders":
            user = (parse_qs(url.query).get("user") or [self.headers.get("X-User-Id", "")])[0]
            if not USER_RE.match(user or ""):
                self.send(400, {"error": "user: 1 to 64 letters, digits, '_', '.', '@', '-'"})
            else:
                self.send(200, {"orders": self.shop.orders_of(user)})
        elif m:
            order = self.shop.order(int(m.group(1)))
            self.send(200 if order else 404, order or {"error": "no such order"})
        else:
            self.send(404, {"error": "not found"})

    def read_json(self):
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise BadRequest("bad Content-Length")
        if n < 0 or n > MAX_BODY:
            raise BadRequest("the body must be at most %d bytes" % MAX_BODY)
        try:
            return json.loads(self.rfile.read(n) or b"null")
        except ValueError:
            raise BadRequest("the body is not JSON")

    def do_POST(self):
        if urlsplit(self.path).path != "/api/orders":
            self.send(404, {"error": "not found"})
            return
        try:
            body = self.read_json()
            if not isinstance(body, dict):
                raise BadRequest("the body must be {\"user\": ..., \"items\": [...]}")
            user = body.get("user") or self.headers.get("X-User-Id")
            header = self.headers.get("X-User-Id")
            if not isinstance(user, str) or not USER_RE.match(user):
                raise BadRequest("user: 1 to 64 letters, digits, '_', '.', '@', '-'")
            if header and header != user:
                raise BadRequest("the body's user and the X-User-Id header differ")
            items = body.get("items")
            if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
                raise BadRequest("items: a list of 1 to %d {product, qty}" % MAX_ITEMS)
            n = self.shop.next_count()
            if self.shop.release == "v2" and self.shop.migration_missing(user, n):
                self.send(500, {"error": "column discount does not exist"})
                return
            order = self.shop.place(user, items)
        except BadRequest as e:
            self.send(400, {"error": str(e)})
            return
        except sqlite3.Error as e:
            self.send(503, {"error": "database: %s" % e})
            return
        self.send(201, order, extra={"Location": "/api/orders/%d" % order["id"]})


class Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description="a small web shop for the firebreak demo")
    ap.add_argument("--release", choices=["v1", "v2"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True, help="the SQLite file both releases share")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    Handler.shop = Shop(args.release, args.db)
    srv = Server((args.host, args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("shop %s listening on http://%s:%d/ (db %s)" % (args.release, args.host, args.port,
                                                           args.db), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
