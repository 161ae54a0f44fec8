//! Removing secret values from agent output before it is stored or shown.
//!
//! Secrets are passed to the agent by name; their values are known only to the
//! process environment and the container. Everything the agent prints passes through
//! a [`Redactor`] before it reaches the task log or a terminal.

/// Values shorter than this are not treated as secrets: replacing every `1` or `ab`
/// in a log would destroy it and protect nothing.
const MIN_SECRET_LEN: usize = 4;

/// The longest unfinished line held back by [`Redactor::push`].
const MAX_PENDING: usize = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (name, value), longest value first so that overlapping secrets redact fully.
    secrets: Vec<(String, Vec<u8>)>,
    /// Bytes of an unfinished line held back until its end arrives, so a secret split
    /// across two chunks is still found.
    pending: Vec<u8>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = (String, String)>) -> Redactor {
        let mut secrets: Vec<(String, Vec<u8>)> = secrets
            .into_iter()
            .filter(|(_, v)| v.len() >= MIN_SECRET_LEN)
            .map(|(n, v)| (n, v.into_bytes()))
            .collect();
        secrets.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        Redactor {
            secrets,
            pending: Vec::new(),
        }
    }

    /// Whether there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Redacts a complete text.
    pub fn redact(&self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for (name, value) in &self.secrets {
            out = replace_all(&out, value, format!("[redacted:{name}]").as_bytes());
        }
        out
    }

    /// Feeds a chunk of a stream; returns the redacted complete lines seen so far.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        match self.pending.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                let rest = self.pending.split_off(end + 1);
                let lines = std::mem::replace(&mut self.pending, rest);
                self.redact(&lines)
            }
            // A line longer than this is not held whole (output without newlines must
            // not grow without bound): all but what could be the start of a secret
            // goes out.
            None if self.pending.len() > MAX_PENDING => {
                let out = self.redact(&self.pending);
                let keep = self.longest().saturating_sub(1);
                let flush = out.len().saturating_sub(keep);
                self.pending = out[flush..].to_vec();
                out[..flush].to_vec()
            }
            None => Vec::new(),
        }
    }

    /// Ends the stream; returns whatever unfinished line was held back, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.pending);
        self.redact(&rest)
    }
}

impl Redactor {
    /// The longest secret, in bytes; 0 when there is none.
    fn longest(&self) -> usize {
        self.secrets.first().map_or(0, |(_, v)| v.len())
    }

    /// Copies `input` to `output` with every secret replaced, in bounded memory (a
    /// file without a single newline is fine). Returns whether anything was replaced.
    pub fn copy_redacted(
        &self,
        mut input: impl std::io::Read,
        mut output: impl std::io::Write,
    ) -> std::io::Result<bool> {
        const CHUNK: usize = 64 << 10;
        // Bytes held back from each chunk: a secret may start in them and end in the
        // next chunk.
        let keep = self.longest().saturating_sub(1);
        let mut carry: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        let mut changed = false;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                let out = self.redact(&carry);
                output.write_all(&out)?;
                return Ok(changed || out != carry);
            }
            carry.extend_from_slice(&buf[..n]);
            let out = self.redact(&carry);
            changed |= out != carry;
            let flush = out.len().saturating_sub(keep);
            output.write_all(&out[..flush])?;
            carry = out[flush..].to_vec();
        }
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new([
            ("API_KEY".to_string(), "sk-secret-123".to_string()),
            ("SHORT".to_string(), "ab".to_string()),
        ])
    }

    #[test]
    fn whole_texts() {
        let cases = [
            ("key=sk-secret-123 ok", "key=[redacted:API_KEY] ok"),
            (
                "sk-secret-123sk-secret-123",
                "[redacted:API_KEY][redacted:API_KEY]",
            ),
            ("short values like ab stay", "short values like ab stay"),
            ("nothing here", "nothing here"),
        ];
        for (input, want) in cases {
            assert_eq!(
                String::from_utf8(redactor().redact(input.as_bytes())).unwrap(),
                want
            );
        }
    }

    #[test]
    fn streams_are_redacted_across_chunk_borders_in_bounded_memory() {
        let r = redactor();
        let mut input = vec![b'x'; (64 << 10) - 5];
        input.extend_from_slice(b"sk-secret-123");
        input.extend(vec![b'y'; 100 << 10]);
        let mut out = Vec::new();
        assert!(r.copy_redacted(&input[..], &mut out).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("sk-secret-123"));
        assert!(text.contains("[redacted:API_KEY]"));
        assert_eq!(
            text.len(),
            input.len() - "sk-secret-123".len() + "[redacted:API_KEY]".len()
        );
        let mut out = Vec::new();
        assert!(!r.copy_redacted(&b"nothing to hide"[..], &mut out).unwrap());
        assert_eq!(out, b"nothing to hide");
    }

    #[test]
    fn a_stream_without_newlines_is_not_held_whole() {
        let mut r = redactor();
        let mut out = Vec::new();
        for _ in 0..5 {
            out.extend(r.push(&vec![b'x'; 1 << 20]));
        }
        assert!(out.len() >= 4 << 20, "flushed as it came: {}", out.len());
        out.extend(r.push(b"sk-secret-123"));
        out.extend(r.finish());
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("[redacted:API_KEY]"));
    }

    #[test]
    fn a_secret_split_across_chunks_is_still_redacted() {
        let mut r = redactor();
        let mut out = r.push(b"first line\nkey=sk-sec");
        out.extend(r.push(b"ret-123 and more"));
        out.extend(r.push(b"\nlast"));
        out.extend(r.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "first line\nkey=[redacted:API_KEY] and more\nlast"
        );
    }
}
