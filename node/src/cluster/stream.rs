//! The hall's JetStream stream as Huashi writes it: which messages it holds (the genesis, a term
//! record per leader, the journal's batches), their headers, and how a node finds its place in
//! it (the message after a command seq, the record of a seq) without reading it all.
//!
//! ```text
//! stream seq  1: genesis   Nats-Msg-Id "genesis"       payload: the genesis market
//!             2: term      Nats-Msg-Id "<term>:term"   Huashi-Last-Seq = last command before it
//!             3: batch     Nats-Msg-Id "<term>:<first>" payload: journal records first..=last
//!             …
//! ```

use async_nats::jetstream::stream::Stream;
use async_nats::HeaderMap;
use huashi_engine::batch_sink::ShippedRecords;

pub const KIND: &str = "Huashi-Kind";
pub const TERM: &str = "Huashi-Term";
pub const FIRST_SEQ: &str = "Huashi-First-Seq";
pub const LAST_SEQ: &str = "Huashi-Last-Seq";

/// What one stream message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The market as it was born; stream seq 1.
    Genesis,
    /// A new leader's first publish: it fences every older term (see `shipper`).
    Term { term: u64, last: u64 },
    /// Journal records `first..=last`.
    Batch { term: u64, first: u64, last: u64 },
}

impl Kind {
    /// The last command seq this message covers (for a term record or the genesis: the last
    /// before it).
    pub fn last_seq(self) -> u64 {
        match self {
            Kind::Genesis => 0,
            Kind::Term { last, .. } | Kind::Batch { last, .. } => last,
        }
    }

    pub fn headers(self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match self {
            Kind::Genesis => {
                headers.insert(KIND, "genesis");
                headers.insert(async_nats::header::NATS_MESSAGE_ID, "genesis");
                headers.insert(LAST_SEQ, "0");
            }
            Kind::Term { term, last } => {
                headers.insert(KIND, "term");
                headers.insert(async_nats::header::NATS_MESSAGE_ID, format!("{term}:term").as_str());
                headers.insert(TERM, term.to_string().as_str());
                headers.insert(FIRST_SEQ, (last + 1).to_string().as_str());
                headers.insert(LAST_SEQ, last.to_string().as_str());
            }
            Kind::Batch { term, first, last } => {
                headers.insert(KIND, "batch");
                headers.insert(async_nats::header::NATS_MESSAGE_ID, format!("{term}:{first}").as_str());
                headers.insert(TERM, term.to_string().as_str());
                headers.insert(FIRST_SEQ, first.to_string().as_str());
                headers.insert(LAST_SEQ, last.to_string().as_str());
            }
        }
        headers
    }

    pub fn parse(headers: Option<&HeaderMap>) -> Result<Kind, String> {
        let headers = headers.ok_or("a stream message without headers")?;
        let number = |name: &str| -> Result<u64, String> {
            headers
                .get(name)
                .ok_or_else(|| format!("a stream message without {name}"))?
                .as_str()
                .parse()
                .map_err(|_| format!("a stream message with a bad {name}"))
        };
        match headers.get(KIND).map(|v| v.as_str()) {
            Some("genesis") => Ok(Kind::Genesis),
            Some("term") => Ok(Kind::Term { term: number(TERM)?, last: number(LAST_SEQ)? }),
            Some("batch") => {
                Ok(Kind::Batch { term: number(TERM)?, first: number(FIRST_SEQ)?, last: number(LAST_SEQ)? })
            }
            other => Err(format!("a stream message of unknown kind {other:?}")),
        }
    }
}

/// The kind and payload of stream message `seq`.
pub async fn get<I>(stream: &Stream<I>, seq: u64) -> Result<(Kind, bytes::Bytes), String> {
    let message = stream.get_raw_message(seq).await.map_err(|e| format!("cannot read stream message {seq}: {e}"))?;
    Ok((Kind::parse(Some(&message.headers))?, message.payload))
}

/// The stream's last message seq (0: empty).
pub async fn last_stream_seq(stream: &Stream) -> Result<u64, String> {
    Ok(stream.get_info().await.map_err(|e| format!("cannot read the stream's state: {e}"))?.state.last_sequence)
}

/// The first stream seq (from 1) whose message covers commands after `after`, or `last + 1` if
/// none does: where a node that applied everything up to `after` goes on from. The last command
/// seqs of the messages never decrease, so this is a binary search (some 20 reads for a day).
pub async fn position_after(stream: &Stream, after: u64) -> Result<u64, String> {
    let last = last_stream_seq(stream).await?;
    position_after_within(stream, after, last).await
}

/// `position_after` in a stream of `last` messages.
async fn position_after_within(stream: &Stream, after: u64, last: u64) -> Result<u64, String> {
    let (mut low, mut high) = (1, last + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        if get(stream, middle).await?.0.last_seq() > after {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Ok(low)
}

/// The payload of journal record `seq` as the stream holds it, if it does.
pub async fn record(stream: &Stream, seq: u64) -> Result<Option<Vec<u8>>, String> {
    let last = last_stream_seq(stream).await?;
    let at = position_after_within(stream, seq - 1, last).await?;
    if at > last {
        return Ok(None);
    }
    let (kind, payload) = get(stream, at).await?;
    if !matches!(kind, Kind::Batch { first, last, .. } if first <= seq && seq <= last) {
        return Ok(None);
    }
    for record in ShippedRecords::new(&payload) {
        let (found, bytes) = record?;
        if found == seq {
            return Ok(Some(bytes.to_vec()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read_back_as_written() {
        for kind in [Kind::Genesis, Kind::Term { term: 7, last: 41 }, Kind::Batch { term: 7, first: 42, last: 90 }] {
            assert_eq!(Kind::parse(Some(&kind.headers())), Ok(kind));
        }
        let batch = Kind::Batch { term: 7, first: 42, last: 90 }.headers();
        assert_eq!(batch.get(async_nats::header::NATS_MESSAGE_ID).unwrap().as_str(), "7:42");
        let term = Kind::Term { term: 7, last: 41 }.headers();
        assert_eq!(term.get(async_nats::header::NATS_MESSAGE_ID).unwrap().as_str(), "7:term");
        assert!(Kind::parse(None).is_err());
        assert!(Kind::parse(Some(&HeaderMap::new())).unwrap_err().contains("unknown kind"));
    }
}
