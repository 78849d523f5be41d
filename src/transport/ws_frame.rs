//! RFC 6455 framing, server side, with no I/O: [`Reader`] turns the bytes a client
//! sent into whole messages and control frames, checking every rule a server must
//! (masking, reserved bits and opcodes, control-frame limits, fragmentation order,
//! the message size limit, UTF-8 of text and close reasons); [`header`] and
//! [`close_payload`] build what the server writes (unmasked frames, never fragmented).
//!
//! The reader keeps bytes only while a frame or a fragmented message is incomplete:
//! once everything pushed has been consumed its buffer is released, so an idle
//! connection holds no read memory (docs/performance.md, idle WebSocket). No
//! extension is negotiated, so any RSV bit is a violation.

use bytes::Bytes;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Payload limit of control frames (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// A rule the client broke, by the close code it calls for (RFC 6455 §7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// 1002: a malformed or out-of-order frame.
    Protocol,
    /// 1007: a text message or close reason that is not UTF-8.
    InvalidPayload,
    /// 1009: a message over the size limit.
    TooBig,
}

/// One thing the client said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole data message (fragments joined); text is checked UTF-8.
    Message {
        binary: bool,
        data: Bytes,
    },
    /// A ping; the server answers with a pong carrying the same payload.
    Ping(Bytes),
    Pong,
    /// A close frame: its status code when it carried one (always a valid code).
    Close(Option<u16>),
}

/// Assembles client frames into [`Event`]s.
#[derive(Debug)]
pub struct Reader {
    /// Bytes received; those before `pos` are consumed. No capacity once all are.
    buf: Vec<u8>,
    pos: usize,
    /// Opcode and joined payload of a fragmented message in progress.
    partial: Option<Box<(u8, Vec<u8>)>>,
    limit: usize,
}

/// A parsed frame header.
struct Head {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Index of the payload in the reader's buffer (just past the header).
    start: usize,
    len: usize,
}

impl Reader {
    /// A reader refusing messages (and frames) over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { buf: Vec::new(), pos: 0, partial: None, limit }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        // Frames consumed from the front are dropped here, once per read, not once
        // per frame.
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True while nothing received is waiting to be read.
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.partial.is_none()
    }

    /// The next event in what was pushed; `Ok(None)` when more bytes are needed.
    /// After an error the connection must be closed: the reader's state is undefined.
    pub fn next_event(&mut self) -> Result<Option<Event>, Violation> {
        loop {
            let Some(head) = self.head()? else { return Ok(None) };
            let end = head.start + head.len;
            if self.buf.len() < end {
                self.buf.reserve_exact(end - self.buf.len());
                return Ok(None);
            }
            unmask(&mut self.buf[head.start..end], head.mask);
            if let Some(event) = self.frame(&head)? {
                return Ok(Some(event));
            }
        }
    }

    /// Parses the header of the first unconsumed frame (`start` is an index into `buf`).
    fn head(&self) -> Result<Option<Head>, Violation> {
        let b = &self.buf[self.pos..];
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        let (masked, len7) = (b[1] & 0x80 != 0, (b[1] & 0x7F) as usize);
        if rsv != 0 || !masked {
            return Err(Violation::Protocol);
        }
        let control = opcode & 0x8 != 0;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Err(Violation::Protocol),
        }
        if control && (!fin || len7 > MAX_CONTROL_PAYLOAD) {
            return Err(Violation::Protocol);
        }
        let (len, ext) = match len7 {
            126 => {
                let Some(x) = b.get(2..4) else { return Ok(None) };
                (u16::from_be_bytes([x[0], x[1]]) as u64, 2)
            }
            127 => {
                let Some(x) = b.get(2..10) else { return Ok(None) };
                let mut be = [0; 8];
                be.copy_from_slice(x);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(Violation::Protocol);
                }
                (len, 8)
            }
            n => (n as u64, 0),
        };
        if len > self.limit as u64 {
            return Err(Violation::TooBig);
        }
        let start = 2 + ext + 4;
        let Some(key) = b.get(start - 4..start) else { return Ok(None) };
        let mut mask = [0; 4];
        mask.copy_from_slice(key);
        Ok(Some(Head { fin, opcode, mask, start: self.pos + start, len: len as usize }))
    }

    /// Consumes the complete (unmasked) frame at the front; `None` for a fragment that
    /// does not finish its message.
    fn frame(&mut self, head: &Head) -> Result<Option<Event>, Violation> {
        let payload = head.start..head.start + head.len;
        let event = match head.opcode {
            OP_PING => Some(Event::Ping(Bytes::copy_from_slice(&self.buf[payload.clone()]))),
            OP_PONG => Some(Event::Pong),
            OP_CLOSE => Some(Event::Close(close_code(&self.buf[payload.clone()])?)),
            OP_TEXT | OP_BINARY if self.partial.is_some() => return Err(Violation::Protocol),
            OP_TEXT | OP_BINARY if head.fin => {
                let data = if payload.end == self.buf.len() {
                    // The usual case: the frame is all that was read, so its buffer
                    // becomes the message without a copy.
                    Bytes::from(std::mem::take(&mut self.buf)).slice(payload.clone())
                } else {
                    Bytes::copy_from_slice(&self.buf[payload.clone()])
                };
                Some(message(head.opcode, data)?)
            }
            OP_TEXT | OP_BINARY => {
                self.partial = Some(Box::new((head.opcode, self.buf[payload.clone()].to_vec())));
                None
            }
            _ => {
                // A continuation.
                let Some(partial) = self.partial.as_mut() else { return Err(Violation::Protocol) };
                if partial.1.len() + head.len > self.limit {
                    return Err(Violation::TooBig);
                }
                partial.1.extend_from_slice(&self.buf[payload.clone()]);
                match self.partial.take() {
                    Some(done) if head.fin => {
                        let (opcode, data) = *done;
                        Some(message(opcode, Bytes::from(data))?)
                    }
                    still_open => {
                        self.partial = still_open;
                        None
                    }
                }
            }
        };
        self.consume(payload.end);
        Ok(event)
    }

    /// Marks everything before `end` consumed, releasing the buffer when nothing is left.
    fn consume(&mut self, end: usize) {
        if end >= self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        } else {
            self.pos = end;
        }
    }
}

fn message(opcode: u8, data: Bytes) -> Result<Event, Violation> {
    let binary = opcode == OP_BINARY;
    if !binary && std::str::from_utf8(&data).is_err() {
        return Err(Violation::InvalidPayload);
    }
    Ok(Event::Message { binary, data })
}

/// The status code of a close frame's payload: none when empty; a 1-byte payload, a
/// code no endpoint may send, or a reason that is not UTF-8 is a violation.
fn close_code(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::Protocol),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !sendable_close_code(code) {
                return Err(Violation::Protocol);
            }
            std::str::from_utf8(reason).map_err(|_| Violation::InvalidPayload)?;
            Ok(Some(code))
        }
    }
}

/// Codes an endpoint may put in a close frame (RFC 6455 §7.4 and its IANA registry):
/// 1004–1006 and 1015 are reserved, 1016–2999 unassigned, below 1000 unused.
pub fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `data` with the 4-byte mask, word by word.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(mask) {
        *b ^= m;
    }
}

/// Writes the header of an unmasked, final frame of `len` payload bytes into `out`;
/// returns its length (2, 4 or 10).
pub fn header(opcode: u8, len: usize, out: &mut [u8; 10]) -> usize {
    out[0] = 0x80 | opcode;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// The payload of a close frame: the code and as much of `reason` as fits the
/// control-frame limit, cut at a character boundary.
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
