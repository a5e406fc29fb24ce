#!/usr/bin/env python3
"""Regenerates src/cmd/server/redis_commands.resp: what redis-server 7.0.15 (on PATH) replies
to `COMMAND INFO` and `COMMAND DOCS` under RESP3, every command, sorted by name (subcommands
too; Redis itself lists them in its dictionaries' random order). raftis answers COMMAND INFO,
DOCS, GETKEYS and GETKEYSANDFLAGS from it for the commands it has (src/cmd/server/command.rs).

Usage: scripts/gen-redis-commands.py [port]   (default 29001; Redis 7.0 is BSD-3 licensed)
"""
import os
import socket
import subprocess
import sys
import time

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 29001
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "cmd", "server", "redis_commands.resp")


class Reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(1 << 20)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(1 << 20)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def frame(self):
        line = self.line()
        tag, rest = line[:1], line[1:]
        if tag in b"+-:_,#(":
            return (tag, rest)
        if tag in b"$=":
            return (tag, self.exact(int(rest)))
        n = int(rest)
        if tag == b"%":
            return (tag, [(self.frame(), self.frame()) for _ in range(n)])
        return (tag, [self.frame() for _ in range(n)])


def encode(f):
    tag, v = f
    if tag in b"+-:_,#(":
        return tag + v + b"\r\n"
    if tag in b"$=":
        return tag + b"%d\r\n" % len(v) + v + b"\r\n"
    if tag == b"%":
        return tag + b"%d\r\n" % len(v) + b"".join(encode(k) + encode(x) for k, x in v)
    return tag + b"%d\r\n" % len(v) + b"".join(encode(x) for x in v)


def sort_info(entry):
    """An INFO entry with its subcommands (element 10) sorted by name."""
    tag, items = entry
    subs = items[9]
    items[9] = (subs[0], sorted((sort_info(s) for s in subs[1]), key=lambda s: s[1][0][1]))
    return (tag, items)


def sort_docs(doc):
    tag, pairs = doc
    out = []
    for k, v in pairs:
        if k[1] == b"subcommands":
            v = (v[0], sorted(((n, sort_docs(d)) for n, d in v[1]), key=lambda p: p[0][1]))
        out.append((k, v))
    return (tag, out)


def main():
    server = subprocess.Popen(
        ["redis-server", "--port", str(PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                sock = socket.create_connection(("127.0.0.1", PORT))
                break
            except OSError:
                time.sleep(0.05)
        r = Reader(sock)

        def call(*args):
            sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
            return r.frame()

        call(b"HELLO", b"3")
        version = call(b"INFO", b"server")[1]
        assert b"redis_version:7.0.15" in version, "needs redis-server 7.0.15"
        info = call(b"COMMAND", b"INFO")
        info = (info[0], sorted((sort_info(e) for e in info[1]), key=lambda e: e[1][0][1]))
        docs = call(b"COMMAND", b"DOCS")
        docs = (docs[0], sorted(((n, sort_docs(d)) for n, d in docs[1]), key=lambda p: p[0][1]))
        with open(OUT, "wb") as f:
            f.write(encode(info))
            f.write(encode(docs))
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
