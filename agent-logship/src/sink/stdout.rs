//! The sink when no Elasticsearch URL is configured (the demo's default, and for debugging): one
//! NDJSON line per document, `{"_index":..,"_id":..,"_source":<document>}`, flushed per batch,
//! acknowledged once written.

use std::io::Write;

use super::bulk::Bulk;
use crate::metrics::Metrics;

/// Writes documents to a `Write` (the process's stdout in the binary, a buffer in tests).
pub struct StdoutSink {
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutSink").finish_non_exhaustive()
    }
}

/// Writing to the output failed (stdout closed, say): the documents are not acknowledged.
#[derive(Debug, thiserror::Error)]
#[error("cannot write documents to the output: {0}")]
pub struct StdoutError(#[from] std::io::Error);

impl StdoutSink {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        StdoutSink { out }
    }

    /// The process's standard output, buffered (flushed per batch).
    pub fn stdout() -> Self {
        StdoutSink::new(Box::new(std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout())))
    }

    /// Writes a batch, flushes, then acknowledges every document of it.
    pub fn write_batch(&mut self, mut bulk: Bulk, metrics: &Metrics) -> Result<(), StdoutError> {
        let mut index = Vec::new();
        crate::encode::json::string(&mut index, bulk.index().as_bytes());
        for i in 0..bulk.len() {
            self.out.write_all(b"{\"_index\":")?;
            self.out.write_all(&index)?;
            // The id as written in the action line: already escaped.
            self.out.write_all(b",\"_id\":\"")?;
            self.out.write_all(bulk.id_bytes(i))?;
            self.out.write_all(b"\",\"_source\":")?;
            self.out.write_all(bulk.source(i))?;
            self.out.write_all(b"}\n")?;
        }
        self.out.flush()?;
        Metrics::add(&metrics.docs_stored, bulk.len() as u64);
        crate::flow::done_all(bulk.take_acks());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_line_per_document() {
        let buf = Shared::default();
        let mut sink = StdoutSink::new(Box::new(buf.clone()));
        let m = Metrics::default();
        let bulk = crate::sink::bulk::test_bulk("logs-\"a", &[("1", r#"{"message":"a"}"#), ("2\n", "{}")]);
        sink.write_batch(bulk, &m).expect("write");
        let out = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(
            out,
            "{\"_index\":\"logs-\\\"a\",\"_id\":\"1\",\"_source\":{\"message\":\"a\"}}\n\
             {\"_index\":\"logs-\\\"a\",\"_id\":\"2\\n\",\"_source\":{}}\n"
        );
        for line in out.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON");
        }
        assert_eq!(Metrics::get(&m.docs_stored), 2);
    }
}
