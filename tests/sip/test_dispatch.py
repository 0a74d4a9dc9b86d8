"""Dispatch of datagrams to edge workers by Call-ID (sans-I/O), fuzzed with hypothesis."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.sip.dispatch import (
    Dispatcher,
    call_id_of,
    decode_frame,
    encode_frame,
    owns_call_id,
    port_slice,
    worker_for,
    worker_for_call_id,
)
from voxgate.sip.media import PortPool
from voxgate.sip.message import parse_message
from voxgate.sip.requests import call_id_affinity, new_call_id

FIXTURE = Path(__file__).parent / "fixtures" / "sipp_uac_invite.bin"


def _request(call_id_line: str, method: str = "INVITE", body: bytes = b"") -> bytes:
    head = (
        f"{method} sip:agent@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:agent@127.0.0.1>\r\n"
        f"{call_id_line}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_full_and_compact_forms_any_case_and_spacing_agree() -> None:
    forms = ["Call-ID: abc@host", "call-id:abc@host", "CALL-ID \t:  abc@host  ", "i: abc@host", "I:abc@host"]
    found = {call_id_of(_request(line)) for line in forms}
    assert found == {b"abc@host"}
    assert len({worker_for(_request(line), 4) for line in forms}) == 1


def test_value_case_is_kept_call_ids_are_case_sensitive() -> None:
    assert call_id_of(_request("Call-ID: AbC@Host")) == b"AbC@Host"


def test_worker_is_the_crc32_of_the_value_stable_across_processes() -> None:
    assert worker_for_call_id("abc@host", 3) == zlib.crc32(b"abc@host") % 3
    assert worker_for(_request("Call-ID: abc@host"), 3) == zlib.crc32(b"abc@host") % 3


def test_folded_call_id_is_joined() -> None:
    assert call_id_of(_request("Call-ID:\r\n  abc@host")) == b"abc@host"


def test_header_names_that_only_start_like_call_id_do_not_count() -> None:
    data = _request("X-Call-ID-Orig: nope\r\nInfo: nope\r\nCall-ID: yes")
    assert call_id_of(data) == b"yes"


def test_body_is_never_searched() -> None:
    data = _request("X: y", body=b"v=0\r\ni: body-call-id\r\n")
    assert call_id_of(data) is None
    assert worker_for(data, 4) == 0


@pytest.mark.parametrize("pad", [8000, 8170, 8185, 9000, 30000])
def test_call_id_deep_in_a_long_header_block_routes_as_the_parser_reads_it(pad: int) -> None:
    """A header block past 8 KiB (long Via/Record-Route stacks, big Identity headers) is
    still a valid datagram: its Call-ID, wherever it sits or whichever boundary its line
    crosses, routes the message to the same worker as the rest of its dialog."""
    call_id = "deep-" + "c" * 40 + "@host"
    data = _request(f"X-Pad: {'p' * pad}\r\nCall-ID: {call_id}")
    message = parse_message(data)
    assert message.call_id == call_id
    assert call_id_of(data) == call_id.encode()
    assert worker_for(data, 7) == worker_for(_request(f"Call-ID: {call_id}"), 7)


@pytest.mark.parametrize("prefix", [b"\r\n", b"\r\n\r\n", b"\n\n", b"\r\n\r\n\r\n"])
def test_leading_crlfs_before_a_message_do_not_hide_its_call_id(prefix: bytes) -> None:
    """The parser ignores CRLFs before the start line (7.5), so the front must too: else
    ``\\r\\n\\r\\n`` in front of an in-dialog request read as an empty header block and
    sent it to worker 0 instead of the worker holding its dialog."""
    data = prefix + _request("Call-ID: lead@host", "BYE")
    assert parse_message(data).call_id == "lead@host"
    assert call_id_of(data) == b"lead@host"
    assert worker_for(data, 5) == worker_for_call_id("lead@host", 5)


def test_real_sipp_invite_matches_the_parser() -> None:
    data = FIXTURE.read_bytes()
    message = parse_message(data)
    assert call_id_of(data) == message.call_id.encode()


def test_register_goes_to_worker_0_whatever_its_call_id() -> None:
    ids = [f"reg{i}@h" for i in range(40)]
    assert {worker_for(_request(f"Call-ID: {c}", "REGISTER"), 4) for c in ids} == {0}
    assert worker_for(b"\r\n" + _request("Call-ID: reg7@h", "REGISTER"), 4) == 0
    # ... while other methods with the same Call-IDs spread
    assert len({worker_for(_request(f"Call-ID: {c}", "OPTIONS"), 4) for c in ids}) == 4


def test_responses_route_by_call_id() -> None:
    response = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nCall-ID: resp@h\r\n\r\n"
    assert worker_for(response, 5) == worker_for_call_id("resp@h", 5)


def test_garbage_and_keepalives() -> None:
    d = Dispatcher(3)
    assert d.route(b"\r\n\r\n") is None and d.route(b"") is None
    assert d.route(b"\x00\x01binary junk") == 0
    assert d.route(b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n") == 0  # no Call-ID
    assert d.route(_request("Call-ID:   ")) == 0  # empty value
    assert d.route(_request("Call-ID: q", "REGISTER")) == 0
    assert (d.keepalives, d.garbage, d.registers) == (2, 3, 1)
    assert sum(d.dispatched) == 4
    snap = d.snapshot()
    assert snap["garbage"] == 3 and snap["dispatched"] == d.dispatched


def test_dispatcher_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="workers"):
        Dispatcher(0)


def test_one_worker_takes_everything() -> None:
    assert worker_for(_request("Call-ID: anything"), 1) == 0


def test_new_call_id_under_affinity_routes_to_its_worker() -> None:
    for index in range(3):
        token = call_id_affinity.set((index, 3))
        try:
            ids = [new_call_id("10.0.0.1") for _ in range(30)]
        finally:
            call_id_affinity.reset(token)
        assert all(owns_call_id(c, index, 3) for c in ids)
        assert all(worker_for(_request(f"Call-ID: {c}"), 3) == index for c in ids)
    assert call_id_affinity.get() is None
    assert new_call_id("h", token="fixed") == "fixed@h"  # explicit tokens are never redrawn


def test_frame_round_trip_and_errors() -> None:
    for host, port in [("127.0.0.1", 5060), ("2001:db8::1", 65535), ("fe80::1%eth0", 1)]:
        assert decode_frame(encode_frame(b"payload", host, port)) == (b"payload", host, port)
    assert decode_frame(encode_frame(b"", "1.2.3.4", 0)) == (b"", "1.2.3.4", 0)
    with pytest.raises(ValueError, match="header"):
        decode_frame(b"\x13")
    with pytest.raises(ValueError, match="address"):
        decode_frame(b"\x13\xc4\x09abc")
    with pytest.raises(ValueError, match="source"):
        encode_frame(b"x", "h", 70000)


def test_port_slices_are_disjoint_even_and_cover_the_range() -> None:
    for low, high, n in [(20000, 20999, 2), (20001, 29999, 3), (41000, 41100, 4), (10000, 10010, 5)]:
        pools = [PortPool(*port_slice(low, high, k, n)) for k in range(n)]
        ports = [set(p.candidates()) for p in pools]
        for k in range(n):
            assert all(p % 2 == 0 and low <= p and p + 1 <= high for p in ports[k])
            for j in range(k):
                assert not ports[k] & ports[j]
        assert set().union(*ports) == set(PortPool(low, high).candidates())
    assert port_slice(20000, 20999, 0, 1) == (20000, 20999)
    with pytest.raises(ValueError, match="port pairs"):
        port_slice(20000, 20004, 0, 3)
    with pytest.raises(ValueError, match="worker"):
        port_slice(20000, 20999, 2, 2)


_token = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1, max_size=40
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 16))
def test_fuzz_never_raises_and_stays_in_range(data: bytes, workers: int) -> None:
    d = Dispatcher(workers)
    index = d.route(data)
    assert index is None or 0 <= index < workers
    assert index == worker_for(data, workers)


@settings(max_examples=300, deadline=None)
@given(
    call_id=_token,
    name=st.sampled_from(["Call-ID", "call-id", "CALL-ID", "Call-Id", "i", "I"]),
    before=st.sampled_from(["", " ", "\t", "  "]),
    after=st.sampled_from(["", " ", "\t ", "   "]),
    trailing=st.sampled_from(["", " ", "\t"]),
    method=st.sampled_from(["INVITE", "BYE", "ACK", "CANCEL", "OPTIONS", "INFO"]),
    workers=st.integers(2, 8),
)
def test_fuzz_same_call_id_same_worker_in_every_form(
    call_id: str, name: str, before: str, after: str, trailing: str, method: str, workers: int
) -> None:
    data = _request(f"{name}{before}:{after}{call_id}{trailing}", method)
    assert call_id_of(data) == call_id.encode()
    assert worker_for(data, workers) == worker_for_call_id(call_id, workers)
    response = f"SIP/2.0 200 OK\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n\r\n".encode()
    assert worker_for(response, workers) == worker_for(data, workers)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(2, 6))
def test_fuzz_mangled_real_invite_never_raises(noise: bytes, workers: int) -> None:
    data = FIXTURE.read_bytes()
    cut = len(noise) % len(data)
    mangled = data[:cut] + noise + data[cut:]
    index = worker_for(mangled, workers)
    assert index is not None and 0 <= index < workers
