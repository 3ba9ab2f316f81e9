//! Where log lines go: an in-memory batch that a writer thread empties into
//! the output a few times a second, with one `write(2)` per batch.
//!
//! `tracing-appender`'s non-blocking writer sends every line through a
//! channel to its thread, which wakes for it and writes it on its own: per
//! request, a wake-up, a `write(2)` and the writer thread's spinning
//! (`sched_yield`) competed with the requests for the CPU, and cost a GET
//! about a quarter of its throughput (docs/benchmarks.md; the same cost is
//! reported upstream in tokio-rs/tracing#3446). Here a line is appended to a
//! shared buffer under a mutex, and the writer thread is woken once per batch.

use std::{
    io::{self, Write},
    mem,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::{self, JoinHandle},
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait for others to share its `write(2)`.
const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// A batch this large is written without waiting for the window to end.
const WRITE_AT_BYTES: usize = 256 * 1024;
/// Lines waiting beyond this make the logging threads wait for the writer
/// (a slow or blocked output slows the service rather than drop lines or
/// grow without bound).
const MAX_PENDING_BYTES: usize = 16 * 1024 * 1024;

/// The handle the formatter writes lines through; cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Writes out every line still pending and stops the writer thread when
/// dropped.
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the writer thread: a batch started, grew large, or the
    /// guard is closing.
    wake_writer: Condvar,
    /// Signals logging threads waiting for room.
    drained: Condvar,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while holding the lock left whole lines
        // behind (appending is one `extend`); keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BatchedWriter {
    /// Starts the writer thread, which writes batches into `output`.
    pub fn spawn(output: impl Write + Send + 'static) -> io::Result<(Self, WriterGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake_writer: Condvar::new(),
            drained: Condvar::new(),
        });
        let thread = thread::Builder::new().name("log-writer".into()).spawn({
            let shared = Arc::clone(&shared);
            move || write_batches(&shared, output)
        })?;
        Ok((
            Self {
                shared: Arc::clone(&shared),
            },
            WriterGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Appends whole lines to the pending batch.
    pub fn append(&self, line: &[u8]) {
        let shared = &*self.shared;
        let mut state = shared.lock();
        while state.pending.len() >= MAX_PENDING_BYTES && !state.closing {
            state = shared
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let was_empty = state.pending.is_empty();
        let was_below = state.pending.len() < WRITE_AT_BYTES;
        state.pending.extend_from_slice(line);
        // Once to start a batch and once when it is due: waking the writer
        // per line is the cost this module exists to avoid.
        if was_empty || (was_below && state.pending.len() >= WRITE_AT_BYTES) {
            shared.wake_writer.notify_one();
        }
    }
}

fn write_batches(shared: &Shared, mut output: impl Write) {
    let mut batch = Vec::new();
    loop {
        let closing = {
            let mut state = shared.lock();
            while state.pending.is_empty() && !state.closing {
                state = shared
                    .wake_writer
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !state.closing && state.pending.len() < WRITE_AT_BYTES {
                state = shared
                    .wake_writer
                    .wait_timeout_while(state, BATCH_WINDOW, |state| {
                        !state.closing && state.pending.len() < WRITE_AT_BYTES
                    })
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            mem::swap(&mut state.pending, &mut batch);
            shared.drained.notify_all();
            state.closing
        };
        // Nowhere to report a failing log output; the lines are dropped and
        // the service goes on.
        let _ = output.write_all(&batch).and_then(|()| output.flush());
        batch.clear();
        if closing && shared.lock().pending.is_empty() {
            return;
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake_writer.notify_one();
        self.shared.drained.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for &BatchedWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = &'a BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read while the writer thread holds it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_in_order_and_batched() {
        let output = Captured::default();
        let (writer, guard) = BatchedWriter::spawn(output.clone()).unwrap();
        for n in 0..1000 {
            (&writer)
                .write_all(format!("line {n}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let writes = output.0.lock().unwrap();
        let text = String::from_utf8(writes.concat()).unwrap();
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        assert_eq!(text, expected);
        // One write per batch window at most while the lines keep coming;
        // far fewer than one per line even on a machine that preempts the
        // logging loop.
        assert!(writes.len() < 100, "{} writes for 1000 lines", writes.len());
    }

    #[test]
    fn a_line_is_written_within_the_batch_window_without_a_flush() {
        let output = Captured::default();
        let (writer, _guard) = BatchedWriter::spawn(output.clone()).unwrap();
        (&writer).write_all(b"hello\n").unwrap();
        let deadline = std::time::Instant::now() + BATCH_WINDOW * 20;
        while output.0.lock().unwrap().concat() != b"hello\n" {
            assert!(std::time::Instant::now() < deadline, "the line never came");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_full_buffer_makes_loggers_wait_instead_of_dropping_lines() {
        /// An output that blocks until the test lets it go.
        struct Gate(Arc<(Mutex<bool>, Condvar)>, Captured);
        impl Write for Gate {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                let (open, opened) = &*self.0;
                let _open = opened
                    .wait_while(open.lock().unwrap(), |open| !*open)
                    .unwrap();
                self.1.write(bytes)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let output = Captured::default();
        let (writer, guard) =
            BatchedWriter::spawn(Gate(Arc::clone(&gate), output.clone())).unwrap();
        let line = vec![b'x'; 1024];
        let lines = 2 * MAX_PENDING_BYTES / line.len();
        let logger = thread::spawn({
            let writer = writer.clone();
            let line = line.clone();
            move || {
                for _ in 0..lines {
                    (&writer).write_all(&line).unwrap();
                }
            }
        });
        // Once the buffer is full the logger can only wait; it must not have
        // gone on (dropping lines) or grown the buffer past its bound.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while writer.shared.lock().pending.len() < MAX_PENDING_BYTES {
            assert!(
                std::time::Instant::now() < deadline,
                "the buffer never filled"
            );
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(100));
        assert!(!logger.is_finished(), "the logger never waited");
        assert!(writer.shared.lock().pending.len() < MAX_PENDING_BYTES + line.len());
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        logger.join().unwrap();
        drop(guard);
        assert_eq!(output.0.lock().unwrap().concat().len(), lines * line.len());
    }
}
