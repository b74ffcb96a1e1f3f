//! Log capture: a tracing subscriber writing into memory the test reads back (e.g. to check
//! that no secret reaches the logs).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// What the subscribers made by `subscriber` wrote, shared with them.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// A plain-text subscriber (no colours) for events up to `level`, writing here. Install
    /// it with `tracing::subscriber::set_default` (this thread) or `set_global_default`.
    pub fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
