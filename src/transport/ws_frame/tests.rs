//! The frame reader against hand-built client frames: every rule a server checks,
//! delivery split at every byte, and the buffer released once a frame is consumed.

use proptest::prelude::*;

use super::*;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: masked with [`MASK`] unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn text(s: &str) -> Event {
    Event::Message { binary: false, data: Bytes::copy_from_slice(s.as_bytes()) }
}

/// Every event in `bytes`, pushed at once, up to the first violation.
fn events(bytes: &[u8], limit: usize) -> Result<Vec<Event>, Violation> {
    let mut r = Reader::new(limit);
    r.push(bytes);
    let mut out = Vec::new();
    while let Some(e) = r.next_event()? {
        out.push(e);
    }
    Ok(out)
}

fn violation(bytes: &[u8]) -> Violation {
    events(bytes, 1024).expect_err("a violation")
}

#[test]
fn whole_messages_of_every_length_encoding() {
    for len in [0, 1, 5, 125, 126, 1000, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let got = events(&frame(0x82, &payload, true), 100_000).unwrap();
        assert_eq!(got, vec![Event::Message { binary: true, data: Bytes::from(payload.clone()) }], "{len} bytes");
        let got = events(&frame(0x81, &payload, true), 100_000).unwrap();
        assert_eq!(got, vec![Event::Message { binary: false, data: Bytes::from(payload) }], "{len} bytes");
    }
}

#[test]
fn fragments_join_and_control_frames_may_interleave() {
    let mut bytes = frame(0x01, b"{\"id\":", true);
    bytes.extend(frame(0x89, b"hi", true));
    bytes.extend(frame(0x00, b"1,", true));
    bytes.extend(frame(0x8A, b"", true));
    bytes.extend(frame(0x80, b"\"x\":2}", true));
    bytes.extend(frame(0x81, b"next", true));
    let got = events(&bytes, 1024).unwrap();
    assert_eq!(
        got,
        vec![Event::Ping(Bytes::from_static(b"hi")), Event::Pong, text("{\"id\":1,\"x\":2}"), text("next")]
    );
}

#[test]
fn close_frames_carry_a_valid_code_or_none() {
    assert_eq!(events(&frame(0x88, b"", true), 64).unwrap(), vec![Event::Close(None)]);
    let mut p = 4000u16.to_be_bytes().to_vec();
    p.extend_from_slice("bye ✓".as_bytes());
    assert_eq!(events(&frame(0x88, &p, true), 64).unwrap(), vec![Event::Close(Some(4000))]);
    assert_eq!(events(&frame(0x88, &1000u16.to_be_bytes(), true), 64).unwrap(), vec![Event::Close(Some(1000))]);
    // One byte, reserved or unassigned codes: 1002.
    assert_eq!(violation(&frame(0x88, &[3], true)), Violation::Protocol);
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        assert_eq!(violation(&frame(0x88, &code.to_be_bytes(), true)), Violation::Protocol, "code {code}");
    }
    // A reason that is not UTF-8: 1007.
    assert_eq!(violation(&frame(0x88, &[0x03, 0xe8, 0xff], true)), Violation::InvalidPayload);
}

#[test]
fn broken_frames_are_violations() {
    let cases: [(&str, Vec<u8>, Violation); 12] = [
        ("unmasked", frame(0x81, b"{}", false), Violation::Protocol),
        ("RSV1", frame(0xC1, b"{}", true), Violation::Protocol),
        ("RSV3", frame(0x91, b"{}", true), Violation::Protocol),
        ("reserved data opcode", frame(0x83, b"", true), Violation::Protocol),
        ("reserved control opcode", frame(0x8B, b"", true), Violation::Protocol),
        ("fragmented ping", frame(0x09, b"", true), Violation::Protocol),
        ("ping over 125 bytes", frame(0x89, &[0; 126], true), Violation::Protocol),
        ("continuation first", frame(0x80, b"x", true), Violation::Protocol),
        ("text not UTF-8", frame(0x81, &[b'{', 0xff, 0xfe, b'}'], true), Violation::InvalidPayload),
        ("over the limit", frame(0x81, &[b'a'; 1025], true), Violation::TooBig),
        (
            "64-bit length with its top bit",
            {
                let mut f = vec![0x81, 0xFF];
                f.extend_from_slice(&(1u64 << 63).to_be_bytes());
                f
            },
            Violation::Protocol,
        ),
        (
            "a new message inside a fragmented one",
            {
                let mut f = frame(0x01, b"a", true);
                f.extend(frame(0x81, b"b", true));
                f
            },
            Violation::Protocol,
        ),
    ];
    for (what, bytes, expected) in cases {
        assert_eq!(events(&bytes, 1024), Err(expected), "{what}");
    }
}

#[test]
fn fragments_over_the_limit_together_are_too_big() {
    let mut bytes = frame(0x01, &[b'a'; 600], true);
    bytes.extend(frame(0x80, &[b'a'; 600], true));
    assert_eq!(events(&bytes, 1024), Err(Violation::TooBig));
    // A huge declared length is refused from the header alone, before any payload.
    let mut head = vec![0x82, 0xFF];
    head.extend_from_slice(&(u32::MAX as u64).to_be_bytes());
    assert_eq!(events(&head, 1024), Err(Violation::TooBig));
}

#[test]
fn the_buffer_is_released_once_everything_is_read() {
    let mut r = Reader::new(1024);
    let f = frame(0x81, b"{\"id\":1}", true);
    r.push(&f[..3]);
    assert_eq!(r.next_event(), Ok(None));
    assert!(!r.is_idle());
    r.push(&f[3..]);
    assert_eq!(r.next_event(), Ok(Some(text("{\"id\":1}"))));
    assert!(r.is_idle());
    assert_eq!(r.buf.capacity(), 0, "no read memory kept while idle");
    // A fragment keeps its message until the last one arrives.
    r.push(&frame(0x01, b"ab", true));
    assert_eq!(r.next_event(), Ok(None));
    assert!(!r.is_idle());
    r.push(&frame(0x80, b"c", true));
    assert_eq!(r.next_event(), Ok(Some(text("abc"))));
    assert!(r.is_idle());
}

#[test]
fn server_headers_and_close_payloads() {
    let mut h = [0; 10];
    assert_eq!((header(OP_TEXT, 5, &mut h), &h[..2]), (2, &[0x81, 5][..]));
    assert_eq!((header(OP_BINARY, 126, &mut h), &h[..4]), (4, &[0x82, 126, 0, 126][..]));
    assert_eq!((header(OP_CLOSE, 65535, &mut h), &h[..4]), (4, &[0x88, 126, 0xff, 0xff][..]));
    assert_eq!(header(OP_TEXT, 65536, &mut h), 10);
    assert_eq!(&h[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    // Reasons are cut to fit 125 bytes, at a character boundary.
    let long = "é".repeat(100);
    let p = close_payload(3001, &long);
    assert!(p.len() <= 125);
    assert_eq!(&p[..2], &3001u16.to_be_bytes());
    assert!(std::str::from_utf8(&p[2..]).is_ok());
}

proptest! {
    /// However the bytes are split into reads, the same events come out.
    #[test]
    fn any_split_gives_the_same_events(
        messages in proptest::collection::vec(("[a-z{}\":,0-9é]{0,300}", any::<bool>(), 1usize..4), 1..6),
        cuts in proptest::collection::vec(1usize..97, 1..40),
    ) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (msg, binary, parts) in &messages {
            let data = msg.as_bytes();
            let step = data.len().div_ceil(*parts).max(1);
            let chunks: Vec<&[u8]> = if data.is_empty() { vec![data] } else { data.chunks(step).collect() };
            for (i, c) in chunks.iter().enumerate() {
                let op = if i == 0 { if *binary { OP_BINARY } else { OP_TEXT } } else { OP_CONTINUATION };
                let fin = if i + 1 == chunks.len() { 0x80 } else { 0 };
                bytes.extend(frame(fin | op, c, true));
            }
            expected.push(Event::Message { binary: *binary, data: Bytes::copy_from_slice(data) });
        }
        let mut r = Reader::new(1 << 20);
        let mut got = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= bytes.len() { break; }
            let end = (at + cut).min(bytes.len());
            r.push(&bytes[at..end]);
            at = end;
            while let Some(e) = r.next_event().unwrap() { got.push(e); }
        }
        prop_assert_eq!(got, expected);
        prop_assert!(r.is_idle());
    }

    /// Arbitrary bytes never panic: the reader yields events, waits, or names a violation.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut r = Reader::new(256);
        r.push(&bytes);
        while let Ok(Some(_)) = r.next_event() {}
    }
}
