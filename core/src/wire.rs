//! The messages nodes of a cluster exchange over the cluster bus (§12):
//! their layout, a strict decoder, the splitting of a whole state into pieces
//! of bounded size and the reassembly of those pieces on the receiving side.
//!
//! Every message travels under one module message type; its payload starts
//! with the kind, then the protocol version, then the kind's fields, all
//! integers little-endian:
//!
//! ```text
//! Digest  kind=1 proto=1 version:u64 fingerprint:u64            (18 bytes)
//! Pull    kind=2 proto=1 request:u32 since:u64                  (14 bytes)
//! Piece   kind=3 proto=1 request:u32 index:u32 count:u32 bytes  (14 + up to PIECE_MAX bytes)
//! ```
//!
//! The decoder trusts nothing: a wrong length, an unknown kind or version,
//! an index past the count, or a transfer whose announced size could exceed
//! [`TRANSFER_MAX`] is an error, never a panic and never an allocation sized
//! by the sender.

use std::collections::HashMap;
use std::fmt;

/// The protocol version written into every message; a message of another
/// version is refused (a node of a newer release may speak a newer one).
pub const PROTOCOL: u8 = 1;

/// The module message type every message of this module travels under.
pub const MESSAGE_TYPE: u8 = 1;

/// The largest state bytes one [`Message::Piece`] carries.
pub const PIECE_MAX: usize = 64 * 1024;

/// The largest whole state a transfer may carry; both the sender and the
/// receiver refuse more.
pub const TRANSFER_MAX: usize = 256 * 1024 * 1024;

/// The most pieces a transfer may have.
pub const PIECES_MAX: u32 = (TRANSFER_MAX / PIECE_MAX) as u32;

/// How long an incomplete transfer may wait for its next piece before it is
/// dropped.
pub const TRANSFER_EXPIRY_MS: i64 = 10_000;

/// A pull none of whose pieces arrived within this may be sent again.
pub const PULL_RETRY_MS: i64 = 1_000;

const KIND_DIGEST: u8 = 1;
const KIND_PULL: u8 = 2;
const KIND_PIECE: u8 = 3;
const DIGEST_LEN: usize = 2 + 8 + 8;
const PULL_LEN: usize = 2 + 4 + 8;
const PIECE_HEADER: usize = 2 + 4 + 4 + 4;

/// One message of the cluster bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// What a node holds: its whitelist version and state fingerprint.
    Digest {
        /// The sender's whitelist version.
        version: u64,
        /// The sender's state fingerprint.
        fingerprint: u64,
    },
    /// Asks the receiver for its state, to be sent in pieces tagged with
    /// `request`: the groups and tombstones of a revision above `since`
    /// (0: the whole state).
    Pull {
        /// Chosen by the asking node; every piece of the answer carries it.
        request: u32,
        /// The asker's version: what it has seen up to, when the sender is
        /// ahead; 0 asks for everything.
        since: u64,
    },
    /// Piece `index` of `count` of the state answering a pull.
    Piece {
        /// The request id of the pull this answers.
        request: u32,
        /// This piece's position, from 0.
        index: u32,
        /// How many pieces the whole state has (at least 1).
        count: u32,
        /// This piece's share of the state, at most [`PIECE_MAX`] bytes.
        bytes: &'a [u8],
    },
}

/// Why a payload was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// No bytes at all.
    Empty,
    /// A first byte that names no kind.
    UnknownKind(u8),
    /// A protocol version this node does not speak.
    Protocol(u8),
    /// A length that does not fit the kind.
    Length {
        /// The kind's name.
        kind: &'static str,
        /// The payload length received.
        len: usize,
    },
    /// A piece whose index, count or size is impossible, or a transfer
    /// larger than [`TRANSFER_MAX`].
    BadPiece(&'static str),
    /// A state larger than [`TRANSFER_MAX`] to send.
    TooLarge(usize),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Empty => write!(f, "empty message"),
            WireError::UnknownKind(k) => write!(f, "unknown message kind {k}"),
            WireError::Protocol(p) => write!(f, "protocol version {p} (this node speaks {PROTOCOL})"),
            WireError::Length { kind, len } => write!(f, "{kind} message of {len} bytes"),
            WireError::BadPiece(why) => write!(f, "bad piece: {why}"),
            WireError::TooLarge(n) => write!(f, "a state of {n} bytes exceeds the transfer limit of {TRANSFER_MAX}"),
        }
    }
}

impl std::error::Error for WireError {}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

impl<'a> Message<'a> {
    /// The payload bytes of this message.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Message::Digest { version, fingerprint } => {
                let mut out = Vec::with_capacity(DIGEST_LEN);
                out.extend_from_slice(&[KIND_DIGEST, PROTOCOL]);
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&fingerprint.to_le_bytes());
                out
            }
            Message::Pull { request, since } => {
                let mut out = Vec::with_capacity(PULL_LEN);
                out.extend_from_slice(&[KIND_PULL, PROTOCOL]);
                out.extend_from_slice(&request.to_le_bytes());
                out.extend_from_slice(&since.to_le_bytes());
                out
            }
            Message::Piece { request, index, count, bytes } => {
                let mut out = Vec::with_capacity(PIECE_HEADER + bytes.len());
                out.extend_from_slice(&[KIND_PIECE, PROTOCOL]);
                out.extend_from_slice(&request.to_le_bytes());
                out.extend_from_slice(&index.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(bytes);
                out
            }
        }
    }

    /// Reads one payload, checking every length and bound.
    pub fn decode(payload: &'a [u8]) -> Result<Message<'a>, WireError> {
        let (&kind, rest) = payload.split_first().ok_or(WireError::Empty)?;
        let name = match kind {
            KIND_DIGEST => "digest",
            KIND_PULL => "pull",
            KIND_PIECE => "piece",
            other => return Err(WireError::UnknownKind(other)),
        };
        let length = || WireError::Length { kind: name, len: payload.len() };
        let &protocol = rest.first().ok_or_else(length)?;
        if protocol != PROTOCOL {
            return Err(WireError::Protocol(protocol));
        }
        match kind {
            KIND_DIGEST => {
                if payload.len() != DIGEST_LEN {
                    return Err(length());
                }
                let version = u64_at(payload, 2).ok_or_else(length)?;
                let fingerprint = u64_at(payload, 10).ok_or_else(length)?;
                Ok(Message::Digest { version, fingerprint })
            }
            KIND_PULL => {
                if payload.len() != PULL_LEN {
                    return Err(length());
                }
                let request = u32_at(payload, 2).ok_or_else(length)?;
                Ok(Message::Pull { request, since: u64_at(payload, 6).ok_or_else(length)? })
            }
            _ => {
                if payload.len() < PIECE_HEADER || payload.len() > PIECE_HEADER + PIECE_MAX {
                    return Err(length());
                }
                let request = u32_at(payload, 2).ok_or_else(length)?;
                let index = u32_at(payload, 6).ok_or_else(length)?;
                let count = u32_at(payload, 10).ok_or_else(length)?;
                let bytes = payload.get(PIECE_HEADER..).ok_or_else(length)?;
                if count == 0 || count > PIECES_MAX {
                    return Err(WireError::BadPiece("count out of range"));
                }
                if index >= count {
                    return Err(WireError::BadPiece("index not below count"));
                }
                Ok(Message::Piece { request, index, count, bytes })
            }
        }
    }
}

/// A whole state being sent as pieces, one at a time, so the sender can
/// pace them.
#[derive(Debug)]
pub struct Splitter {
    request: u32,
    state: Vec<u8>,
    next: u32,
    count: u32,
}

impl Splitter {
    /// The pieces of `state` answering pull `request`. An empty state is one
    /// empty piece, so the receiver still learns the transfer is complete.
    pub fn new(request: u32, state: Vec<u8>) -> Result<Splitter, WireError> {
        if state.len() > TRANSFER_MAX {
            return Err(WireError::TooLarge(state.len()));
        }
        let count =
            u32::try_from(state.len().div_ceil(PIECE_MAX).max(1)).map_err(|_| WireError::TooLarge(state.len()))?;
        Ok(Splitter { request, state, next: 0, count })
    }

    /// How many pieces the state has.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The request id the pieces carry.
    pub fn request(&self) -> u32 {
        self.request
    }

    /// The payload of the next piece; `None` once all were given.
    pub fn next_piece(&mut self) -> Option<Vec<u8>> {
        if self.next >= self.count {
            return None;
        }
        let start = (self.next as usize).saturating_mul(PIECE_MAX).min(self.state.len());
        let end = start.saturating_add(PIECE_MAX).min(self.state.len());
        let bytes = self.state.get(start..end).unwrap_or_default();
        let payload = Message::Piece { request: self.request, index: self.next, count: self.count, bytes }.encode();
        self.next += 1;
        Some(payload)
    }

    /// Whether every piece was given.
    pub fn done(&self) -> bool {
        self.next >= self.count
    }
}

/// The pieces of one sender's transfer, gathered until all have arrived.
#[derive(Debug, Default)]
pub struct Reassembler {
    request: Option<u32>,
    count: u32,
    pieces: Vec<Option<Vec<u8>>>,
    received: u32,
    bytes: usize,
    last_ms: i64,
}

impl Reassembler {
    /// An idle reassembler.
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// The request id of the transfer in progress, if any.
    pub fn in_progress(&self) -> Option<u32> {
        self.request
    }

    /// Takes one piece received at `now_ms`. A piece of another request id
    /// than the transfer in progress restarts it. Returns the whole state
    /// once its last missing piece arrives; an error drops the transfer.
    pub fn accept(
        &mut self,
        request: u32,
        index: u32,
        count: u32,
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<Option<Vec<u8>>, WireError> {
        if count == 0 || count > PIECES_MAX || index >= count || bytes.len() > PIECE_MAX {
            self.reset();
            return Err(WireError::BadPiece("index, count or size out of range"));
        }
        if self.request != Some(request) {
            self.reset();
            self.request = Some(request);
            self.count = count;
            // The slots are at most PIECES_MAX words: the count was checked.
            self.pieces = vec![None; count as usize];
        } else if count != self.count {
            self.reset();
            return Err(WireError::BadPiece("count changed within a transfer"));
        }
        self.last_ms = now_ms;
        let Some(slot) = self.pieces.get_mut(index as usize) else {
            self.reset();
            return Err(WireError::BadPiece("index not below count"));
        };
        if slot.is_none() {
            if self.bytes.saturating_add(bytes.len()) > TRANSFER_MAX {
                self.reset();
                return Err(WireError::BadPiece("transfer exceeds the size limit"));
            }
            self.bytes += bytes.len();
            *slot = Some(bytes.to_vec());
            self.received += 1;
        }
        if self.received < self.count {
            return Ok(None);
        }
        let mut whole = Vec::with_capacity(self.bytes);
        for piece in self.pieces.drain(..).flatten() {
            whole.extend_from_slice(&piece);
        }
        self.reset();
        Ok(Some(whole))
    }

    /// Drops a transfer that has waited more than [`TRANSFER_EXPIRY_MS`]
    /// for its next piece; `true` if one was dropped.
    pub fn expire(&mut self, now_ms: i64) -> bool {
        if self.request.is_some() && now_ms.saturating_sub(self.last_ms) > TRANSFER_EXPIRY_MS {
            self.reset();
            return true;
        }
        false
    }

    /// Drops the transfer in progress.
    pub fn reset(&mut self) {
        *self = Reassembler { last_ms: self.last_ms, ..Reassembler::default() };
    }
}

/// A node's last digest as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Its whitelist version.
    pub version: u64,
    /// Its state fingerprint.
    pub fingerprint: u64,
    /// When it arrived (ms).
    pub at_ms: i64,
}

#[derive(Debug)]
struct Pull {
    request: u32,
    /// When it was sent or its last piece arrived.
    active_ms: i64,
    pieces: Reassembler,
}

#[derive(Debug, Default)]
struct PeerState {
    seen: Option<Seen>,
    pull: Option<Pull>,
}

/// What a node knows of the other nodes: the last digest of each, and the
/// pull it has outstanding to each (at most one per node). Pieces are
/// accepted only for an outstanding pull, so no node can make this one
/// gather what it did not ask for.
#[derive(Debug, Default)]
pub struct Peers {
    peers: HashMap<String, PeerState>,
    next_request: u32,
}

impl Peers {
    /// An empty table.
    pub fn new() -> Peers {
        Peers::default()
    }

    /// Records a digest from `sender` received at `now_ms`. When this node
    /// may pull (a primary), the fingerprint differs from `mine` and no pull
    /// to `sender` is active (sent or fed a piece within [`PULL_RETRY_MS`]),
    /// starts a pull and returns its request id, to be sent to `sender`.
    pub fn on_digest(
        &mut self,
        sender: &str,
        version: u64,
        fingerprint: u64,
        mine: u64,
        may_pull: bool,
        now_ms: i64,
    ) -> Option<u32> {
        let peer = self.peers.entry(sender.to_string()).or_default();
        peer.seen = Some(Seen { version, fingerprint, at_ms: now_ms });
        let active = peer.pull.as_ref().is_some_and(|p| now_ms.saturating_sub(p.active_ms) < PULL_RETRY_MS);
        if !may_pull || fingerprint == mine || active {
            return None;
        }
        self.next_request = self.next_request.wrapping_add(1);
        let request = self.next_request;
        peer.pull = Some(Pull { request, active_ms: now_ms, pieces: Reassembler::new() });
        Some(request)
    }

    /// Forgets the pull to `sender` (it could not be sent).
    pub fn pull_failed(&mut self, sender: &str) {
        if let Some(peer) = self.peers.get_mut(sender) {
            peer.pull = None;
        }
    }

    /// Takes a piece from `sender`. Returns the whole state when it
    /// completes the outstanding pull (which ends); `Ok(None)` while pieces
    /// are missing, and for a piece of no outstanding pull (ignored); an
    /// error ends the pull.
    pub fn on_piece(
        &mut self,
        sender: &str,
        request: u32,
        index: u32,
        count: u32,
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<Option<Vec<u8>>, WireError> {
        let Some(peer) = self.peers.get_mut(sender) else {
            return Ok(None);
        };
        let Some(pull) = peer.pull.as_mut().filter(|p| p.request == request) else {
            return Ok(None);
        };
        pull.active_ms = now_ms;
        let result = pull.pieces.accept(request, index, count, bytes, now_ms);
        if !matches!(result, Ok(None)) {
            peer.pull = None;
        }
        result
    }

    /// Ends the pulls that have waited more than [`TRANSFER_EXPIRY_MS`]
    /// for a piece; returns how many.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let mut expired = 0;
        for peer in self.peers.values_mut() {
            if peer.pull.as_ref().is_some_and(|p| now_ms.saturating_sub(p.active_ms) > TRANSFER_EXPIRY_MS) {
                peer.pull = None;
                expired += 1;
            }
        }
        expired
    }

    /// Forgets every node for which `known` is false (gone from the cluster).
    pub fn retain(&mut self, known: impl Fn(&str) -> bool) {
        self.peers.retain(|id, _| known(id));
    }

    /// The last digest of node `id`, if one arrived.
    pub fn seen(&self, id: &str) -> Option<Seen> {
        self.peers.get(id).and_then(|p| p.seen)
    }

    /// The request id of the pull outstanding to node `id`.
    pub fn pulling(&self, id: &str) -> Option<u32> {
        self.peers.get(id).and_then(|p| p.pull.as_ref()).map(|p| p.request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digest_layout_is_fixed() {
        let bytes = Message::Digest { version: 7, fingerprint: 0x0102_0304_0506_0708 }.encode();
        assert_eq!(bytes.len(), 18);
        assert_eq!(bytes, [1, 1, 7, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Message::decode(&bytes), Ok(Message::Digest { version: 7, fingerprint: 0x0102_0304_0506_0708 }));
    }

    #[test]
    fn pull_and_piece_round_trip() {
        let pull = Message::Pull { request: 42, since: 7 };
        assert_eq!(pull.encode(), [2, 1, 42, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Message::decode(&pull.encode()), Ok(pull));
        let piece = Message::Piece { request: 9, index: 1, count: 3, bytes: b"abc" };
        let bytes = piece.encode();
        assert_eq!(bytes.len(), 17);
        assert_eq!(Message::decode(&bytes), Ok(piece));
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(Message::decode(&[]), Err(WireError::Empty));
        assert_eq!(Message::decode(&[9, 1]), Err(WireError::UnknownKind(9)));
        assert_eq!(Message::decode(&[1]), Err(WireError::Length { kind: "digest", len: 1 }));
        assert_eq!(Message::decode(&[1, 2, 0, 0]), Err(WireError::Protocol(2)));
        let mut digest = Message::Digest { version: 1, fingerprint: 2 }.encode();
        digest.push(0);
        assert_eq!(Message::decode(&digest), Err(WireError::Length { kind: "digest", len: 19 }));
        assert_eq!(Message::decode(&[2, 1, 0, 0, 0]), Err(WireError::Length { kind: "pull", len: 5 }));
        let zero = Message::Piece { request: 1, index: 0, count: 0, bytes: b"" }.encode();
        assert_eq!(Message::decode(&zero), Err(WireError::BadPiece("count out of range")));
        let past = Message::Piece { request: 1, index: 2, count: 2, bytes: b"" }.encode();
        assert_eq!(Message::decode(&past), Err(WireError::BadPiece("index not below count")));
        let huge = Message::Piece { request: 1, index: 0, count: PIECES_MAX + 1, bytes: b"" }.encode();
        assert_eq!(Message::decode(&huge), Err(WireError::BadPiece("count out of range")));
        let big = vec![0u8; PIECE_MAX + 1];
        let long = Message::Piece { request: 1, index: 0, count: 1, bytes: &big }.encode();
        assert_eq!(Message::decode(&long), Err(WireError::Length { kind: "piece", len: PIECE_HEADER + PIECE_MAX + 1 }));
    }

    fn transfer(state: &[u8]) -> Vec<Vec<u8>> {
        let mut s = Splitter::new(5, state.to_vec()).expect("within the limit");
        let mut out = Vec::new();
        while let Some(p) = s.next_piece() {
            out.push(p);
        }
        assert!(s.done());
        out
    }

    fn reassemble(r: &mut Reassembler, pieces: &[Vec<u8>], now: i64) -> Option<Vec<u8>> {
        let mut whole = None;
        for p in pieces {
            let Ok(Message::Piece { request, index, count, bytes }) = Message::decode(p) else { panic!("a piece") };
            if let Some(w) = r.accept(request, index, count, bytes, now).expect("accepted") {
                assert!(whole.is_none(), "complete twice");
                whole = Some(w);
            }
        }
        whole
    }

    #[test]
    fn an_empty_state_is_one_empty_piece() {
        let pieces = transfer(b"");
        assert_eq!(pieces.len(), 1);
        assert_eq!(reassemble(&mut Reassembler::new(), &pieces, 0), Some(Vec::new()));
    }

    #[test]
    fn a_large_state_splits_into_bounded_pieces() {
        let state: Vec<u8> = (0..(3 * PIECE_MAX + 10)).map(|i| (i % 251) as u8).collect();
        let pieces = transfer(&state);
        assert_eq!(pieces.len(), 4);
        assert!(pieces.iter().all(|p| p.len() <= PIECE_HEADER + PIECE_MAX));
        let mut r = Reassembler::new();
        let mut shuffled = pieces.clone();
        shuffled.reverse();
        assert_eq!(reassemble(&mut r, &shuffled, 0), Some(state));
        assert_eq!(r.in_progress(), None);
    }

    #[test]
    fn too_large_a_state_is_refused() {
        assert_eq!(Splitter::new(1, vec![0; TRANSFER_MAX + 1]).err(), Some(WireError::TooLarge(TRANSFER_MAX + 1)));
    }

    #[test]
    fn a_new_request_restarts_and_stale_transfers_expire() {
        let mut r = Reassembler::new();
        assert_eq!(r.accept(1, 0, 2, b"a", 0), Ok(None));
        assert_eq!(r.in_progress(), Some(1));
        // A new pull's answer replaces the old transfer.
        assert_eq!(r.accept(2, 1, 2, b"d", 10), Ok(None));
        assert_eq!(r.accept(2, 0, 2, b"c", 20), Ok(Some(b"cd".to_vec())));
        assert_eq!(r.accept(3, 0, 2, b"x", 100), Ok(None));
        assert!(!r.expire(100 + TRANSFER_EXPIRY_MS));
        assert!(r.expire(101 + TRANSFER_EXPIRY_MS));
        assert_eq!(r.in_progress(), None);
        // A changed count within a transfer drops it.
        assert_eq!(r.accept(4, 0, 2, b"x", 0), Ok(None));
        assert!(r.accept(4, 1, 3, b"y", 0).is_err());
        assert_eq!(r.in_progress(), None);
        // A repeated piece counts once.
        assert_eq!(r.accept(5, 0, 2, b"p", 0), Ok(None));
        assert_eq!(r.accept(5, 0, 2, b"p", 0), Ok(None));
        assert_eq!(r.accept(5, 1, 2, b"q", 0), Ok(Some(b"pq".to_vec())));
    }

    #[test]
    fn a_primary_pulls_once_per_differing_digest_and_retries_after_a_second() {
        let mut p = Peers::new();
        // Same fingerprint, or a replica: no pull, but the digest is kept.
        assert_eq!(p.on_digest("a", 3, 7, 7, true, 0), None);
        assert_eq!(p.on_digest("b", 3, 8, 7, false, 0), None);
        assert_eq!(p.seen("b"), Some(Seen { version: 3, fingerprint: 8, at_ms: 0 }));
        let first = p.on_digest("a", 4, 8, 7, true, 100).expect("a pull");
        // At most one outstanding pull per node.
        assert_eq!(p.on_digest("a", 4, 8, 7, true, 600), None);
        // A piece keeps it active.
        assert_eq!(p.on_piece("a", first, 0, 2, b"x", 1000), Ok(None));
        assert_eq!(p.on_digest("a", 4, 8, 7, true, 1900), None);
        // A second without a piece: asked again, with a new request id;
        // the old request's pieces are ignored.
        let second = p.on_digest("a", 4, 8, 7, true, 2000).expect("a retry");
        assert_ne!(first, second);
        assert_eq!(p.on_piece("a", first, 1, 2, b"y", 2001), Ok(None));
        assert_eq!(p.pulling("a"), Some(second));
        assert_eq!(p.on_piece("a", second, 0, 1, b"whole", 2002), Ok(Some(b"whole".to_vec())));
        assert_eq!(p.pulling("a"), None);
    }

    #[test]
    fn unsolicited_bad_and_stale_pieces_are_dropped() {
        let mut p = Peers::new();
        // No pull to it: nothing is kept.
        assert_eq!(p.on_piece("z", 1, 0, 1, b"x", 0), Ok(None));
        assert_eq!(p.seen("z"), None);
        let r = p.on_digest("a", 1, 1, 0, true, 0).expect("a pull");
        assert!(p.on_piece("a", r, 0, 1, &vec![0; PIECE_MAX + 1], 0).is_err());
        assert_eq!(p.pulling("a"), None);
        let r = p.on_digest("a", 1, 1, 0, true, 5000).expect("a pull");
        assert_eq!(p.on_piece("a", r, 0, 2, b"x", 5000), Ok(None));
        assert_eq!(p.expire(5000 + TRANSFER_EXPIRY_MS), 0);
        assert_eq!(p.expire(5001 + TRANSFER_EXPIRY_MS), 1);
        assert_eq!(p.pulling("a"), None);
        let r = p.on_digest("a", 1, 1, 0, true, 99_000).expect("a pull");
        p.pull_failed("a");
        assert_eq!(p.on_piece("a", r, 0, 1, b"x", 99_001), Ok(None));
        p.retain(|id| id != "a");
        assert_eq!(p.seen("a"), None);
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(m) = Message::decode(&bytes) {
                prop_assert_eq!(m.encode(), bytes);
            }
        }

        #[test]
        fn messages_round_trip(version in any::<u64>(), fingerprint in any::<u64>(), request in any::<u32>(),
                               count in 1..=PIECES_MAX, index_seed in any::<u32>(),
                               bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let index = index_seed % count;
            for m in [
                Message::Digest { version, fingerprint },
                Message::Pull { request, since: version },
                Message::Piece { request, index, count, bytes: &bytes },
            ] {
                let encoded = m.encode();
                prop_assert_eq!(Message::decode(&encoded), Ok(m.clone()));
            }
        }

        #[test]
        fn split_then_reassemble_in_any_order(len in 0usize..(3 * PIECE_MAX), seed in any::<u64>()) {
            let state: Vec<u8> = (0..len).map(|i| (i as u64).wrapping_mul(seed | 1) as u8).collect();
            let mut pieces = transfer(&state);
            prop_assert_eq!(pieces.len(), len.div_ceil(PIECE_MAX).max(1));
            let n = pieces.len();
            pieces.rotate_left((seed as usize) % n);
            prop_assert_eq!(reassemble(&mut Reassembler::new(), &pieces, 0), Some(state));
        }
    }
}
