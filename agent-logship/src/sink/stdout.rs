//! The sink when no Elasticsearch URL is configured (the demo's default, and for debugging): one
//! NDJSON line per document, `{"_index":..,"_id":..,"_source":<document>}`, flushed per batch,
//! acknowledged once written.

use std::io::Write;

use crate::metrics::Metrics;
use crate::record::Document;

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
    pub fn write_batch(&mut self, docs: Vec<Document>, metrics: &Metrics) -> Result<(), StdoutError> {
        for doc in &docs {
            self.out.write_all(b"{\"_index\":")?;
            serde_json::to_writer(&mut self.out, &*doc.index).map_err(std::io::Error::other)?;
            self.out.write_all(b",\"_id\":")?;
            serde_json::to_writer(&mut self.out, &doc.id).map_err(std::io::Error::other)?;
            self.out.write_all(b",\"_source\":")?;
            self.out.write_all(&doc.source)?;
            self.out.write_all(b"}\n")?;
        }
        self.out.flush()?;
        Metrics::add(&metrics.docs_stored, docs.len() as u64);
        for doc in docs {
            doc.ack.done();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Ack;
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
        let docs = vec![
            Document {
                index: "logs-a".into(),
                id: "1".into(),
                source: br#"{"message":"a"}"#.to_vec(),
                ack: Ack::none(),
            },
            Document { index: "logs-\"b".into(), id: "2".into(), source: b"{}".to_vec(), ack: Ack::none() },
        ];
        sink.write_batch(docs, &m).expect("write");
        let out = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(
            out,
            "{\"_index\":\"logs-a\",\"_id\":\"1\",\"_source\":{\"message\":\"a\"}}\n\
             {\"_index\":\"logs-\\\"b\",\"_id\":\"2\",\"_source\":{}}\n"
        );
        assert_eq!(Metrics::get(&m.docs_stored), 2);
    }
}
