//! gRPC's length-prefixed messages (the body of every gRPC request and response):
//! a flag byte (0 plain, 1 compressed with the `grpc-encoding`), a 4-byte big-endian
//! length, the message. A captured body is a prefix: its last message may be cut.

/// One message as far as the captured bytes hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    /// Flag byte 1: compressed with the stream's `grpc-encoding`.
    pub(crate) compressed: bool,
    /// The length the prefix announced.
    pub(crate) declared_len: u32,
    /// The message bytes captured (all of them unless `cut`).
    pub(crate) bytes: &'a [u8],
    /// The capture ended inside this message.
    pub(crate) cut: bool,
}

/// The body is not a sequence of length-prefixed messages (a flag byte other than 0 or
/// 1): it is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not gRPC length-prefixed messages: flag byte {flag:#04x} at offset {offset}")]
pub(crate) struct NotFramed {
    pub(crate) flag: u8,
    pub(crate) offset: usize,
}

/// The messages of a body prefix, in order. A message header cut by the end of the
/// capture (fewer than 5 bytes) is not a message.
pub(crate) fn split(body: &[u8]) -> Result<Vec<Message<'_>>, NotFramed> {
    let mut out = Vec::new();
    let mut at = 0;
    while body.len() - at >= 5 {
        let flag = body[at];
        if flag > 1 {
            return Err(NotFramed { flag, offset: at });
        }
        let declared_len =
            u32::from_be_bytes([body[at + 1], body[at + 2], body[at + 3], body[at + 4]]);
        let start = at + 5;
        let avail = body.len() - start;
        let take = avail.min(declared_len as usize);
        out.push(Message {
            compressed: flag == 1,
            declared_len,
            bytes: &body[start..start + take],
            cut: take < declared_len as usize,
        });
        at = start + take;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(flag: u8, msg: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        v.extend_from_slice(msg);
        v
    }

    #[test]
    fn messages_split_and_a_cut_last_one() {
        let mut body = framed(0, b"\x0a\x03abc");
        body.extend(framed(1, b"zzzz"));
        body.extend(framed(0, b""));
        body.extend(framed(0, b"0123456789"));
        let all = split(&body).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].bytes, b"\x0a\x03abc");
        assert!(all[1].compressed && !all[1].cut);
        assert_eq!(all[2].bytes, b"");
        let cut = split(&body[..body.len() - 4]).unwrap();
        assert_eq!(cut.len(), 4);
        assert!(cut[3].cut && cut[3].bytes == b"012345" && cut[3].declared_len == 10);
        // A header cut after 3 bytes is not a message.
        let short = split(&body[..body.len() - 12]).unwrap();
        assert_eq!(short.len(), 3);
        assert_eq!(
            split(b"{\"a\":1}"),
            Err(NotFramed {
                flag: b'{',
                offset: 0
            })
        );
        assert_eq!(split(b"").unwrap(), vec![]);
    }
}
