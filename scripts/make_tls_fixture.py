#!/usr/bin/env python3
"""Makes tests/fixtures/tls/: a TLS 1.2 handshake capture and the values
other tools compute for it, which tests/tls.rs compares Tollgate's with.

    scripts/make_tls_fixture.py [--ja4plus PATH]

- handshake.pcap: a browser-like ClientHello (GREASE, SNI, ALPN h2 and
  http/1.1, key share, supported_versions 1.3 and 1.2), a TLS 1.2
  ServerHello, a certificate made here by openssl, ServerHelloDone, then
  ChangeCipherSpec and encrypted records; TCP with correct checksums.
- cert.der: the server's certificate (unit tests read it alone).
- expected.json: JA3 and JA3S (string and MD5) from tshark, JA4 from the
  third-party ja4plus package (PyPI; `--ja4plus` names its command, by
  default `ja4plus` on PATH), and the certificate's subject, issuer,
  serial, SHA-1 fingerprint and dates from openssl.

Run once; commit both files. Needs openssl, tshark and ja4plus.
"""

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "tls")

rng = random.Random(15)


def u8(n):
    return struct.pack("!B", n)


def u16(n):
    return struct.pack("!H", n)


def u24(n):
    return struct.pack("!I", n)[1:]


def vec8(b):
    return u8(len(b)) + b


def vec16(b):
    return u16(len(b)) + b


def ext(t, data):
    return u16(t) + vec16(data)


def client_hello(sni):
    ciphers = [0x4A4A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030,
               0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    name = sni.encode()
    exts = b"".join([
        ext(0x0A0A, b""),
        ext(0, vec16(u8(0) + vec16(name))),
        ext(23, b""),
        ext(65281, b"\x00"),
        ext(10, vec16(b"".join(u16(g) for g in [0x3A3A, 29, 23, 24]))),
        ext(11, vec8(b"\x00")),
        ext(35, b""),
        ext(16, vec16(vec8(b"h2") + vec8(b"http/1.1"))),
        ext(5, b"\x01\x00\x00\x00\x00"),
        ext(13, vec16(b"".join(u16(s) for s in
                               [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]))),
        ext(18, b""),
        ext(51, vec16(u16(0x3A3A) + vec16(b"\x00") + u16(29) + vec16(bytes(rng.randrange(256) for _ in range(32))))),
        ext(45, vec8(b"\x01")),
        ext(43, vec8(b"".join(u16(v) for v in [0x5A5A, 0x0304, 0x0303]))),
        ext(27, vec8(u16(2))),
        ext(0x1A1A, b"\x00"),
    ])
    body = (u16(0x0303) + bytes(rng.randrange(256) for _ in range(32))
            + vec8(bytes(rng.randrange(256) for _ in range(32)))
            + vec16(b"".join(u16(c) for c in ciphers)) + vec8(b"\x00") + vec16(exts))
    return u8(1) + u24(len(body)) + body


def server_hello():
    exts = b"".join([
        ext(65281, b"\x00"),
        ext(11, vec8(b"\x00\x01\x02")),
        ext(16, vec16(vec8(b"h2"))),
        ext(23, b""),
    ])
    body = (u16(0x0303) + bytes(rng.randrange(256) for _ in range(32))
            + vec8(bytes(rng.randrange(256) for _ in range(32)))
            + u16(0xC02F) + u8(0) + vec16(exts))
    return u8(2) + u24(len(body)) + body


def certificate(der):
    body = u24(len(der) + 3) + u24(len(der)) + der
    return u8(11) + u24(len(body)) + body


def record(kind, body):
    return u8(kind) + u16(0x0303) + vec16(body)


def checksum(b):
    if len(b) % 2:
        b += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


CLIENT, SERVER = bytes([10, 1, 0, 5]), bytes([104, 18, 32, 7])


def frame(src, dst, sport, dport, seq, ack, flags, payload):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + u16(checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + u16(checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    if src == SERVER:
        eth = eth[6:12] + eth[:6] + eth[12:]
    return eth + ip + tcp


def conversation(der):
    SYN, ACK, PSH, FIN = 2, 16, 8, 1
    cs, ss = 1000, 5000
    pkts = []

    def c(flags, payload=b""):
        nonlocal cs
        pkts.append(frame(CLIENT, SERVER, 51000, 443, cs, ss, flags, payload))
        cs += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def s(flags, payload=b""):
        nonlocal ss
        pkts.append(frame(SERVER, CLIENT, 443, 51000, ss, cs, flags, payload))
        ss += len(payload) + (1 if flags & (SYN | FIN) else 0)

    c(SYN)
    s(SYN | ACK)
    c(ACK)
    c(PSH | ACK, record(22, client_hello("api.example-llm.com")))
    s(ACK)
    flight = record(22, server_hello() + certificate(der) + u8(14) + u24(0))
    s(PSH | ACK, flight)
    c(ACK)
    c(PSH | ACK, record(20, b"\x01") + record(22, bytes(rng.randrange(256) for _ in range(40))))
    s(PSH | ACK, record(20, b"\x01") + record(22, bytes(rng.randrange(256) for _ in range(40))))
    c(PSH | ACK, record(23, bytes(rng.randrange(256) for _ in range(120))))
    s(PSH | ACK, record(23, bytes(rng.randrange(256) for _ in range(300))))
    c(FIN | ACK)
    s(FIN | ACK)
    c(ACK)
    return pkts


def write_pcap(path, pkts):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1767225600
        for i, p in enumerate(pkts):
            f.write(struct.pack("<IIII", t, i * 1000, len(p), len(p)))
            f.write(p)


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ja4plus", default="ja4plus")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        der_path = os.path.join(tmp, "cert.der")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", os.path.join(tmp, "key.pem"), "-subj",
             "/C=US/O=Tollgate Test/CN=api.example-llm.com",
             "-addext", "subjectAltName=DNS:api.example-llm.com,DNS:*.example-llm.com",
             "-set_serial", "0x55a1", "-days", "3650", "-outform", "DER", "-out", der_path])
        der = open(der_path, "rb").read()
        with open(os.path.join(OUT, "cert.der"), "wb") as f:
            f.write(der)
        pcap = os.path.join(OUT, "handshake.pcap")
        write_pcap(pcap, conversation(der))
        x = run(["openssl", "x509", "-inform", "DER", "-in", der_path, "-noout", "-fingerprint",
                 "-sha1", "-serial", "-startdate", "-enddate"])
    fields = dict(line.split("=", 1) for line in x.strip().splitlines())
    ja3 = run(["tshark", "-r", pcap, "-Y", "tls.handshake.type == 1", "-T", "fields",
               "-e", "tls.handshake.ja3", "-e", "tls.handshake.ja3_full"]).split()
    ja3s = run(["tshark", "-r", pcap, "-Y", "tls.handshake.type == 2", "-T", "fields",
                "-e", "tls.handshake.ja3s", "-e", "tls.handshake.ja3s_full"]).split()
    ja4_out = run([args.ja4plus, "--format", "json", "--types", "ja4", "analyze", pcap])
    ja4 = sorted({r["fingerprint"] for r in _records(json.loads(ja4_out)) if r.get("type") == "ja4"})
    if len(ja4) != 1:
        sys.exit(f"make_tls_fixture: expected one JA4 from ja4plus, got {ja4!r}: {ja4_out}")
    expected = {
        "sni": "api.example-llm.com",
        "ja3": {"hash": ja3[0], "string": ja3[1]},
        "ja3s": {"hash": ja3s[0], "string": ja3s[1]},
        "ja4": ja4[0],
        "fingerprint": fields[next(k for k in fields if k.lower() == "sha1 fingerprint")].lower(),
        "serial_hex": fields["serial"].upper(),
        "notbefore": fields["notBefore"],
        "notafter": fields["notAfter"],
        "made_by": "scripts/make_tls_fixture.py: ja3/ja3s tshark "
                   + run(["tshark", "--version"]).splitlines()[0]
                   + "; ja4 ja4plus " + run([args.ja4plus, "--version"]).strip()
                   + "; certificate fields openssl",
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print(json.dumps(expected, indent=2))


def _records(v):
    """ja4plus's JSON: one record, or a list of them."""
    if isinstance(v, dict):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from _records(x)


if __name__ == "__main__":
    main()
