#!/usr/bin/env python3
"""A fixed number of HTTP/1.1 keep-alive requests over C connections (asyncio, stdlib only).

    reqload.py HOST:PORT TOTAL CONNS 'METHOD PATH [JSON]' ['METHOD PATH [JSON]' ...] -H 'Name: value'

Each connection sends the listed requests in turn (a lock then an unlock, say) until it has sent
TOTAL/CONNS. Used by request-cost.sh to drive the service while `perf stat` counts its CPU: the
client's own speed does not matter, only the number of requests the server answers. Exits 1 when
any answer is not 2xx.
"""
import asyncio, sys, time


async def conn_loop(host, port, raws, n, lat, errors):
    r, w = await asyncio.open_connection(host, port)
    for i in range(n):
        t = time.perf_counter()
        w.write(raws[i % len(raws)])
        head = await r.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await r.readexactly(length) if length else b""
        if status >= 300:
            errors.append((status, body[:200]))
        lat.append(time.perf_counter() - t)
    w.close()


async def main():
    args = sys.argv[1:]
    headers = [args[i + 1] for i, a in enumerate(args) if a == "-H"]
    args = [a for i, a in enumerate(args) if a != "-H" and (i == 0 or args[i - 1] != "-H")]
    host_port, total, conns, specs = args[0], int(args[1]), int(args[2]), args[3:]
    host, port = host_port.split(":")
    raws = []
    for spec in specs:
        parts = spec.split(" ", 2)
        method, path = parts[0], parts[1]
        body = parts[2] if len(parts) > 2 else ""
        hdr = "".join(h + "\r\n" for h in headers)
        if body:
            hdr += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        raws.append(f"{method} {path} HTTP/1.1\r\nHost: {host_port}\r\n{hdr}\r\n{body}".encode())
    lat, errors = [], []
    per = total // conns
    t = time.perf_counter()
    await asyncio.gather(*(conn_loop(host, int(port), raws, per, lat, errors) for _ in range(conns)))
    el = time.perf_counter() - t
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"requests={len(lat)} errors={len(errors)} wall={el:.2f}s rps={len(lat)/el:.0f} "
          f"p50={p(0.5):.3f}ms p99={p(0.99):.3f}ms")
    if errors:
        print("first error:", errors[0], file=sys.stderr)
        sys.exit(1)


asyncio.run(main())
