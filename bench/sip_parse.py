"""SIP message cost and transaction-layer throughput of voxgate.sip, in one process.

Run: ``.venv/bin/python bench/sip_parse.py [--quick]``. Prints a markdown table and the
machine it ran on.

* parse / serialize: a typical INVITE with an SDP offer (~900 bytes, the shape sipp and
  softphones send) and its 200 OK with the answer. Every iteration parses a *different*
  message (fresh Call-ID, branch and tags), so the memoized header parsers (From/To/Via) only
  help where they would in production (a dialog repeating the same From/To), not by seeing
  one string over and over. ``parse`` includes the validation every message gets (Via, From,
  To, CSeq, Call-ID, Contact parsed); ``+ SDP`` also parses the body.
* transaction layer: a UAC and a UAS TransactionLayer exchange INVITE / 100 / 200 / ACK /
  BYE / 200 in memory, each message serialized and parsed on the way (what the edge will
  do), dialogs built with ``Dialog.uac``/``Dialog.uas``. Reported as SIP messages per second
  on one core (6 messages per call), and the same without the wire encode/decode.

No third-party Python SIP stack installs here to compare against (see DESIGN.md), so the
table has no reference column.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from voxgate.sip import (  # noqa: E402
    Dialog,
    RequestReceived,
    ResponseReceived,
    SessionDescription,
    SipRequest,
    TransactionLayer,
    Transmit,
    make_response,
    parse_message,
)

SDP = (
    "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\nm=audio 49170 RTP/AVP 0 8 111 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def invite(i: int) -> bytes:
    body = SDP.encode()
    return (
        f"INVITE sip:+15551234567@gw.example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{i:012x};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f'From: "Alice Liddell" <sip:alice@example.com>;tag={i:08x}a\r\n'
        f"To: <sip:+15551234567@gw.example.com>\r\n"
        f"Call-ID: {i:016x}@192.0.2.10\r\n"
        f"CSeq: 1 INVITE\r\n"
        f"Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n"
        f"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n"
        f"Supported: replaces, timer\r\n"
        f"User-Agent: bench/1.0\r\n"
        f"Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def ok(i: int) -> bytes:
    req = parse_message(invite(i))
    assert isinstance(req, SipRequest)
    return make_response(
        req, 200, to_tag=f"{i:08x}b",
        headers=[("Contact", "<sip:gw@198.51.100.1:5060>"), ("Content-Type", "application/sdp")],
        body=SDP.replace("alice", "gw").encode(),
    ).serialize()  # fmt: skip


def machine() -> str:
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name:")), model)
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"nproc={os.cpu_count()}, {model}, Python {platform.python_version()}"


def per_message_us(messages: list[bytes], op: str, repeat: int) -> float:
    """Best-of-``repeat`` microseconds per message over the whole list."""
    ops = {
        "parse": lambda m: parse_message(m),
        "parse+serialize": lambda m: parse_message(m).serialize(),
        "parse+SDP": lambda m: SessionDescription.parse(parse_message(m).body),
    }
    fn = ops[op]

    def run() -> None:
        for m in messages:
            fn(m)

    best = min(timeit.repeat(run, number=1, repeat=repeat))
    return best / len(messages) * 1e6


def call_exchange(n: int, wire: bool) -> float:
    """Seconds for ``n`` INVITE/100/200/ACK/BYE/200 calls between two layers."""
    uac, uas = TransactionLayer(), TransactionLayer()
    a, b = ("192.0.2.10", 5060), ("198.51.100.1", 5060)
    layers = {a: uac, b: uas}
    sent: dict[tuple[str, ...], SipRequest] = {}
    dialogs: dict[str, Dialog] = {}
    now = 0.0
    count = 0

    def pump() -> None:
        nonlocal count
        busy = True
        while busy:
            busy = False
            for addr, layer in layers.items():
                for ev in layer.events():
                    busy = True
                    if isinstance(ev, Transmit):
                        count += 1
                        msg = parse_message(ev.message.serialize()) if wire else ev.message
                        layers[ev.destination].receive(msg, addr, now)
                    elif isinstance(ev, RequestReceived) and ev.key is not None:
                        req = ev.request
                        if req.method == "INVITE":
                            resp = make_response(req, 200, to_tag="uas", headers=[("Contact", "<sip:gw@198.51.100.1>")])
                            Dialog.uas(req, resp, transport="UDP", sent_by=b)
                        else:
                            resp = make_response(req, 200)
                        layer.send_response(resp, now)
                    elif isinstance(ev, ResponseReceived) and ev.response.status == 200:
                        req = sent.pop(ev.key)
                        if req.method == "INVITE":
                            d = Dialog.uac(req, ev.response)
                            dialogs[req.call_id] = d
                            layer.send_stateless(d.create_ack(req.cseq.number), b)

    start = time.perf_counter()
    for i in range(n):
        req = parse_message(invite(i))
        assert isinstance(req, SipRequest)
        sent[uac.send_request(req, b, now).key] = req
        pump()
        bye = dialogs.pop(req.call_id).create_request("BYE")
        sent[uac.send_request(bye, b, now).key] = bye
        pump()
        now += 0.001
        if i % 1000 == 999:  # let Completed transactions expire, as time would
            now += 64.0
            uac.handle_timer(now)
            uas.handle_timer(now)
    elapsed = time.perf_counter() - start
    assert count == 6 * n, count
    return elapsed


def main() -> None:
    quick = "--quick" in sys.argv
    n, repeat, calls = (500, 3, 500) if quick else (5000, 5, 5000)
    invites = [invite(i) for i in range(n)]
    oks = [ok(i) for i in range(n)]
    rows = [
        (f"INVITE + SDP ({len(invites[0])} B)", "parse", per_message_us(invites, "parse", repeat)),
        ("INVITE + SDP", "parse + serialize", per_message_us(invites, "parse+serialize", repeat)),
        ("INVITE + SDP", "parse + SDP body parse", per_message_us(invites, "parse+SDP", repeat)),
        (f"200 OK + SDP ({len(oks[0])} B)", "parse", per_message_us(oks, "parse", repeat)),
        ("200 OK + SDP", "parse + serialize", per_message_us(oks, "parse+serialize", repeat)),
    ]
    wire_s = min(call_exchange(calls, True) for _ in range(2))
    obj_s = min(call_exchange(calls, False) for _ in range(2))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Run: `.venv/bin/python bench/sip_parse.py{' --quick' if quick else ''}` on {now}; {machine()}")
    print()
    print("| message | operation | us per message |")
    print("|---|---|---:|")
    for name, op, us in rows:
        print(f"| {name} | {op} | {us:.1f} |")
    print()
    print("| transaction layer, INVITE/100/200/ACK/BYE/200 in memory | messages/s | calls/s |")
    print("|---|---:|---:|")
    for label, secs in (("with serialize + parse of every message", wire_s), ("message objects passed directly", obj_s)):
        print(f"| {label} | {6 * calls / secs:,.0f} | {calls / secs:,.0f} |")


if __name__ == "__main__":
    main()
