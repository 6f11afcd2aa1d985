//! Just enough STUN (RFC 8489) to route a datagram on the shared socket: is
//! it STUN, and which of our connections does its USERNAME name.

/// The magic cookie every STUN message carries at bytes 4..8.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const HEADER: usize = 20;
const USERNAME: u16 = 0x0006;

/// Whether `d` looks like a STUN message (RFC 7983 demultiplexing: first
/// byte 0..=3, and the magic cookie).
pub fn is_stun(d: &[u8]) -> bool {
    d.len() >= HEADER && d[0] < 4 && d[4..8] == MAGIC_COOKIE
}

/// Whether `d` is a binding success response (class success, method binding).
pub fn is_binding_success(d: &[u8]) -> bool {
    is_stun(d) && d[0] == 0x01 && d[1] == 0x01
}

/// The transaction id of a binding request.
pub fn binding_request_id(d: &[u8]) -> Option<[u8; 12]> {
    (is_stun(d) && d[0] == 0x00 && d[1] == 0x01).then(|| transaction_id(d))
}

/// The transaction id of a binding response (success or error).
pub fn binding_response_id(d: &[u8]) -> Option<[u8; 12]> {
    (is_stun(d) && d[0] == 0x01 && (d[1] == 0x01 || d[1] == 0x11)).then(|| transaction_id(d))
}

fn transaction_id(d: &[u8]) -> [u8; 12] {
    let mut t = [0; 12];
    t.copy_from_slice(&d[8..HEADER]);
    t
}

/// The local half of a STUN message's USERNAME (`"<ours>:<theirs>"` in a
/// binding request sent to us): the ufrag of the connection it is for.
pub fn local_ufrag(d: &[u8]) -> Option<&str> {
    if !is_stun(d) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([d[2], d[3]]));
    let body = d.get(HEADER..HEADER + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let vlen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + vlen)?;
        if kind == USERNAME {
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next().filter(|u| !u.is_empty());
        }
        // Attributes are padded to 4 bytes.
        at += 4 + vlen.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, as browsers send it.
        attrs.extend_from_slice(&0x0024u16.to_be_bytes());
        attrs.extend_from_slice(&4u16.to_be_bytes());
        attrs.extend_from_slice(&[1, 2, 3, 4]);
        attrs.extend_from_slice(&USERNAME.to_be_bytes());
        attrs.extend_from_slice(&u16::try_from(username.len()).unwrap_or(0).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&u16::try_from(attrs.len()).unwrap_or(0).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn the_username_names_our_connection() {
        let m = binding_request("sfu0a1b:Xy9z");
        assert!(is_stun(&m));
        assert_eq!(local_ufrag(&m), Some("sfu0a1b"));
    }

    #[test]
    fn a_success_response_is_told_from_a_request() {
        let mut m = binding_request("a:b");
        assert!(!is_binding_success(&m));
        assert_eq!(binding_request_id(&m), Some([7; 12]));
        assert_eq!(binding_response_id(&m), None);
        m[0] = 0x01;
        m[1] = 0x01;
        assert!(is_binding_success(&m));
        assert_eq!(binding_response_id(&m), Some([7; 12]));
        assert_eq!(binding_request_id(&m), None);
        assert!(!is_binding_success(&[0x01, 0x01, 0, 0]));
    }

    #[test]
    fn rtp_dtls_and_truncated_messages_are_not_routed_by_name() {
        // RTP (version 2: first byte 0x80) and DTLS (20..=63) are not STUN.
        assert_eq!(local_ufrag(&[0x80; 40]), None);
        assert_eq!(local_ufrag(&[22; 40]), None);
        let m = binding_request("abc:def");
        assert_eq!(local_ufrag(&m[..m.len() - 6]), None);
        // A STUN message without USERNAME (a response) names nobody.
        let mut resp = binding_request("abc:def");
        resp.truncate(HEADER + 8);
        resp[2..4].copy_from_slice(&8u16.to_be_bytes());
        assert!(is_stun(&resp));
        assert_eq!(local_ufrag(&resp), None);
    }
}
