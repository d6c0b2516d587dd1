//! Encoders for the hot path: PostgreSQL binary COPY rows and compact JSON values, written
//! into reused buffers (no allocation per sample).

use mc_domain::telemetry::SampleValue;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// A binary COPY stream: header, tuples, trailer.
pub struct CopyWriter {
    buf: Vec<u8>,
    rows: usize,
}

impl Default for CopyWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyWriter {
    pub fn new() -> Self {
        let mut w = Self {
            buf: Vec::with_capacity(1 << 20),
            rows: 0,
        };
        w.reset();
        w
    }

    /// Empty the buffer (keeping its capacity) and write the header.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        self.buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        self.buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        self.rows = 0;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn begin_row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
    }

    pub fn text(&mut self, s: &str) {
        self.buf.extend_from_slice(&(s.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn int8(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn int4(&mut self, v: i32) {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A `timestamptz` from epoch milliseconds.
    pub fn timestamptz_ms(&mut self, ms: i64) {
        self.int8(ms * 1000 - PG_EPOCH_OFFSET_US);
    }

    /// A `jsonb` field whose JSON text `write` appends to the buffer.
    pub fn jsonb(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        self.buf.push(1); // jsonb binary format version
        write(&mut self.buf);
        let len = (self.buf.len() - at - 4) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// The finished stream (trailer appended).
    pub fn finish(&mut self) -> &[u8] {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        &self.buf
    }
}

/// Append a JSON object `{"name":value,...}` of samples.
pub fn write_params(out: &mut Vec<u8>, samples: &[(&str, SampleValue<'_>)]) {
    out.push(b'{');
    for (i, (name, value)) in samples.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_value(out, *value);
    }
    out.push(b'}');
}

/// Append one value as JSON.
pub fn write_value(out: &mut Vec<u8>, value: SampleValue<'_>) {
    match value {
        SampleValue::Number(n) => write_number(out, n),
        SampleValue::Bool(true) => out.extend_from_slice(b"true"),
        SampleValue::Bool(false) => out.extend_from_slice(b"false"),
        SampleValue::Text(s) => write_str(out, s),
    }
}

fn write_number(out: &mut Vec<u8>, n: f64) {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        let _ = std::io::Write::write_fmt(out, format_args!("{}", n as i64));
    } else {
        // serde_json formats finite floats shortest-roundtrip (ryu); values are validated finite.
        let _ = serde_json::to_writer(&mut *out, &n);
    }
}

/// Append a JSON string with the escapes JSON requires.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                let _ = std::io::Write::write_fmt(out, format_args!("\\u{:04x}", b));
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_round_trip_through_serde() {
        let mut out = Vec::new();
        write_params(
            &mut out,
            &[
                ("temp", SampleValue::Number(42.0)),
                ("v", SampleValue::Number(-0.125)),
                ("on", SampleValue::Bool(true)),
                ("mode", SampleValue::Text("SAFE \"x\"\n\u{1}")),
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"temp": 42, "v": -0.125, "on": true, "mode": "SAFE \"x\"\n\u{1}"})
        );
    }

    #[test]
    fn copy_rows_are_framed() {
        let mut w = CopyWriter::new();
        w.begin_row(2);
        w.text("SC-1");
        w.timestamptz_ms(946_684_800_000);
        let bytes = w.finish().to_vec();
        assert_eq!(&bytes[..11], b"PGCOPY\n\xff\r\n\0");
        // header 19 bytes, then field count 2, "SC-1" (4 + 4), timestamptz (4 + 8 = 0), trailer.
        assert_eq!(&bytes[19..21], &2i16.to_be_bytes());
        assert_eq!(&bytes[21..25], &4i32.to_be_bytes());
        assert_eq!(&bytes[29..33], &8i32.to_be_bytes());
        assert_eq!(&bytes[33..41], &0i64.to_be_bytes());
        assert_eq!(&bytes[41..], &(-1i16).to_be_bytes());
        assert_eq!(w.rows(), 1);
    }
}
