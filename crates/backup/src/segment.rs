//! The records of a segment: one JetStream message each, length-prefixed, inside one zstd
//! frame. Pure encoding and decoding; files and hashes are elsewhere.
//!
//! A record is `seq u64 | time_ns i64 | subject_len u16 | subject | headers_len u32 | headers |
//! payload_len u32 | payload`, little endian. Headers are `Name: value\r\n` lines (the NATS
//! header block without its status line), empty when the message had none.

use std::io::{self, Read, Write};

/// Largest field a record may declare (a message is at most 64 MiB in NATS): a corrupted
/// length never makes the decoder allocate more than this.
pub const MAX_FIELD: usize = 64 * 1024 * 1024;

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    /// When JetStream stored it, nanoseconds since the epoch.
    pub time_ns: i64,
    pub subject: String,
    /// `(name, value)` in the order the message carried them.
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Record {
    /// Append this record's bytes to `out`.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let subject = self.subject.as_bytes();
        let subject_len = u16::try_from(subject.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "subject too long"))?;
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            headers.extend_from_slice(name.as_bytes());
            headers.extend_from_slice(b": ");
            headers.extend_from_slice(value.as_bytes());
            headers.extend_from_slice(b"\r\n");
        }
        out.write_all(&self.seq.to_le_bytes())?;
        out.write_all(&self.time_ns.to_le_bytes())?;
        out.write_all(&subject_len.to_le_bytes())?;
        out.write_all(subject)?;
        out.write_all(&(headers.len() as u32).to_le_bytes())?;
        out.write_all(&headers)?;
        out.write_all(&(self.payload.len() as u32).to_le_bytes())?;
        out.write_all(&self.payload)
    }

    /// Read the next record; `Ok(None)` at a clean end (no byte of a next record).
    pub fn read_from(input: &mut impl Read) -> Result<Option<Self>, FormatError> {
        let mut seq = [0u8; 8];
        if !read_exact_or_end(input, &mut seq)? {
            return Ok(None);
        }
        let time_ns = i64::from_le_bytes(array(input)?);
        let subject_len = u16::from_le_bytes(array(input)?) as usize;
        let subject = String::from_utf8(bytes(input, subject_len)?)
            .map_err(|_| FormatError::Invalid("a subject is not UTF-8".into()))?;
        let headers_len = u32::from_le_bytes(array(input)?) as usize;
        let headers = parse_headers(&bytes(input, headers_len)?)?;
        let payload_len = u32::from_le_bytes(array(input)?) as usize;
        let payload = bytes(input, payload_len)?;
        Ok(Some(Self {
            seq: u64::from_le_bytes(seq),
            time_ns,
            subject,
            headers,
            payload,
        }))
    }
}

/// A segment's content is not a sequence of well-formed records.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("truncated record")]
    Truncated,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Fill `buf`; false if the input ended before its first byte, an error if it ended inside.
fn read_exact_or_end(input: &mut impl Read, buf: &mut [u8]) -> Result<bool, FormatError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(FormatError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

fn array<const N: usize>(input: &mut impl Read) -> Result<[u8; N], FormatError> {
    let mut buf = [0u8; N];
    if read_exact_or_end(input, &mut buf)? {
        Ok(buf)
    } else {
        Err(FormatError::Truncated)
    }
}

fn bytes(input: &mut impl Read, len: usize) -> Result<Vec<u8>, FormatError> {
    if len > MAX_FIELD {
        return Err(FormatError::Invalid(format!(
            "a record declares a field of {len} bytes (at most {MAX_FIELD})"
        )));
    }
    let mut buf = vec![0u8; len];
    if len > 0 && !read_exact_or_end(input, &mut buf)? {
        return Err(FormatError::Truncated);
    }
    Ok(buf)
}

fn parse_headers(block: &[u8]) -> Result<Vec<(String, String)>, FormatError> {
    let text = std::str::from_utf8(block)
        .map_err(|_| FormatError::Invalid("a header block is not UTF-8".into()))?;
    let mut out = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(": ")
            .ok_or_else(|| FormatError::Invalid(format!("a header line has no name: {line:?}")))?;
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            time_ns: 1_764_000_000_000_000_000 + seq as i64,
            subject: format!("mc.events.mission.{seq}"),
            headers: vec![
                ("Nats-Msg-Id".into(), format!("id-{seq}")),
                ("Mc-Trace".into(), "a: b".into()),
            ],
            payload: vec![seq as u8; seq as usize],
        }
    }

    #[test]
    fn records_round_trip_through_a_stream() {
        let mut bytes = Vec::new();
        let records: Vec<Record> = (0..5).map(record).collect();
        for r in &records {
            r.write_to(&mut bytes).unwrap();
        }
        Record {
            headers: vec![],
            payload: vec![],
            ..record(9)
        }
        .write_to(&mut bytes)
        .unwrap();
        let mut input = bytes.as_slice();
        let mut read = Vec::new();
        while let Some(r) = Record::read_from(&mut input).unwrap() {
            read.push(r);
        }
        assert_eq!(read.len(), 6);
        assert_eq!(&read[..5], &records[..]);
        assert!(read[5].headers.is_empty() && read[5].payload.is_empty());
    }

    #[test]
    fn a_cut_anywhere_inside_a_record_is_truncated_never_a_clean_end() {
        let mut bytes = Vec::new();
        record(3).write_to(&mut bytes).unwrap();
        for cut in 1..bytes.len() {
            let mut input = &bytes[..cut];
            assert!(
                matches!(Record::read_from(&mut input), Err(FormatError::Truncated)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_absurd_length_is_refused_before_allocating() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&0i64.to_le_bytes());
        bytes.extend_from_slice(&0u16.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Record::read_from(&mut bytes.as_slice()),
            Err(FormatError::Invalid(m)) if m.contains("field of")
        ));
    }
}
