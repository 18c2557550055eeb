//! Runs the sensor node's loop on a scenario and writes its pqlink frames to a port.
//!
//! The node is the firmware's own [`Node`], so the frames are exactly what a real node sends: the
//! simulator only replaces the ADC ([`ScenarioSource`]) and the UART (any `std::io::Write`).
//!
//! Writing behaves like a UART that cannot wait: a port that would block (a full pseudo-terminal
//! whose reader stalled) is retried for a short while, then the frame is dropped and counted, and
//! the node reports the drop in its next heartbeat as a real one would. Any other write error (the
//! far end of a pseudo-terminal closed: `EIO`) ends the run with that error.

use super::scenario::Scenario;
use super::waveform::{node_config, ScenarioSource};
use kare_firmware::node::{Node, NodeCounters, SampleSource};
use kare_firmware::pqlink::MAX_CHANNELS;
use std::fs::File;
use std::io::{self, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Samples kept before a capture's trigger: 100 ms at 6400 S/s. These are sample counts (the
/// node's buffers are fixed at compile time); at another sample rate the times scale.
pub const CAPTURE_PRE: usize = 640;
/// Samples in a whole capture: 300 ms at 6400 S/s (100 ms before the trigger, 200 ms after),
/// the same as the Pico firmware, so captures from the simulator look like real ones.
pub const CAPTURE_TOTAL: usize = 1920;

/// The node the simulator runs.
pub type SimNode = Node<CAPTURE_PRE, CAPTURE_TOTAL>;

/// How long one frame's write is retried while the port would block. A real UART sends a
/// 256-byte frame in 22 ms; waiting about that long rides out a reader that is merely slow.
pub const WRITE_RETRY: Duration = Duration::from_millis(25);

/// Pause between retries of a blocked write.
const RETRY_PAUSE: Duration = Duration::from_micros(500);

/// Samples are generated in chunks of this many milliseconds of scenario time between pacing
/// checks: short enough that frames leave within 10 ms of their time, long enough that the
/// sleep calls cost nothing.
pub const CHUNK_MS: u64 = 10;

/// How fast scenario time runs against the wall clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// One second of scenario per second, like a real node.
    RealTime,
    /// `factor` seconds of scenario per second (must be positive and finite).
    Accelerated(f64),
    /// As fast as the machine goes.
    Unpaced,
}

impl Pace {
    /// The pace for a speed factor as given on a command line: 0 is unpaced, 1 is real time.
    /// `None` for a negative or non-finite factor.
    pub fn from_speed(factor: f64) -> Option<Pace> {
        if !factor.is_finite() || factor < 0.0 {
            None
        } else if factor == 0.0 {
            Some(Pace::Unpaced)
        } else if factor == 1.0 {
            Some(Pace::RealTime)
        } else {
            Some(Pace::Accelerated(factor))
        }
    }

    /// Scenario seconds per wall second; `None` when unpaced or the factor is unusable.
    fn factor(self) -> Option<f64> {
        match self {
            Pace::RealTime => Some(1.0),
            Pace::Accelerated(f) if f.is_finite() && f > 0.0 => Some(f),
            Pace::Accelerated(_) | Pace::Unpaced => None,
        }
    }
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The scenario's `duration_s` elapsed.
    Duration,
    /// The stop flag was set.
    Stopped,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStats {
    /// Samples generated per channel.
    pub samples: u64,
    /// Scenario time covered, seconds.
    pub scenario_s: f64,
    /// Wall-clock time taken.
    pub wall: Duration,
    /// Frames written whole to the port.
    pub frames_written: u64,
    /// Bytes written, delimiters included.
    pub bytes_written: u64,
    /// Frames given up because the port kept refusing them (would block).
    pub frames_dropped: u64,
    /// Frames of which only a part could be written before giving up; the simulator then sends
    /// a lone delimiter so that the receiver discards the torn frame and resynchronises.
    pub frames_torn: u64,
    /// The node's own counters (the ones its heartbeats report).
    pub node: NodeCounters,
    /// Why the run ended.
    pub ending: Ending,
}

/// Runs `scenario` through the sensor node's loop and writes every frame to `port`, until
/// `stop` is set or the scenario's `duration_s` has elapsed (never, without one).
///
/// Fails with `InvalidInput` for an invalid scenario or pace, and with the port's error when a
/// write fails other than by blocking.
pub fn run(
    scenario: &Scenario,
    port: impl Write,
    pace: Pace,
    stop: &AtomicBool,
) -> io::Result<RunStats> {
    let invalid = |e: String| io::Error::new(ErrorKind::InvalidInput, e);
    let config = node_config(scenario).map_err(|e| invalid(e.to_string()))?;
    let mut source = ScenarioSource::new(scenario).map_err(|e| invalid(e.to_string()))?;
    let speed = match pace {
        Pace::Accelerated(f) if !(f.is_finite() && f > 0.0) => {
            return Err(invalid(format!(
                "speed factor must be positive and finite, got {f}"
            )))
        }
        p => p.factor(),
    };
    let mut node: Box<SimNode> =
        Box::new(Node::new(config).map_err(|e| invalid(format!("node setup: {e}")))?);

    let fs = u64::from(scenario.sample_rate_hz);
    let total = scenario.duration_s.map(|d| (d * fs as f64).round() as u64);
    let mut writer = FrameWriter::new(port);
    let start = Instant::now();
    let mut k: u64 = 0;
    let mut chunk: u64 = 0;
    let mut sample = [0i32; MAX_CHANNELS];
    let ending = loop {
        if stop.load(Ordering::Relaxed) {
            break Ending::Stopped;
        }
        // Chunk ends are computed from the chunk number, not accumulated, so that rates not
        // divisible by 100 do not drift.
        chunk += 1;
        let mut chunk_end = chunk * fs * CHUNK_MS / 1000;
        if let Some(total) = total {
            if k >= total {
                break Ending::Duration;
            }
            chunk_end = chunk_end.min(total);
        }
        if let Some(speed) = speed {
            // Like a real node, a chunk's frames leave only once its samples "exist": wait until
            // the wall clock, measured from the start (so sleep overshoot never accumulates),
            // reaches the chunk's end.
            let due = start + Duration::from_secs_f64(chunk_end as f64 / fs as f64 / speed);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        while k < chunk_end {
            let Ok(()) = source.next_sample(&mut sample);
            node.push(&sample, |bytes| writer.send(bytes));
            k += 1;
            if let Some(e) = writer.error.take() {
                return Err(e);
            }
        }
        writer.flush()?;
    };
    Ok(RunStats {
        samples: k,
        scenario_s: k as f64 / fs as f64,
        wall: start.elapsed(),
        frames_written: writer.frames_written,
        bytes_written: writer.bytes_written,
        frames_dropped: writer.frames_dropped,
        frames_torn: writer.frames_torn,
        node: node.counters(),
        ending,
    })
}

/// The UART: writes whole frames, retrying a port that would block, never blocking for long.
struct FrameWriter<W: Write> {
    port: W,
    /// A frame was cut short: a delimiter is owed before the next frame.
    torn: bool,
    /// The last frame was dropped: do not wait for the port again until a write succeeds, so a
    /// reader that has stopped for good costs one attempt per frame instead of the full retry.
    congested: bool,
    /// The first fatal error, returned by [`run`] as soon as the node's callback has returned.
    error: Option<io::Error>,
    frames_written: u64,
    bytes_written: u64,
    frames_dropped: u64,
    frames_torn: u64,
}

/// How far a frame got.
enum Outcome {
    Whole,
    /// Gave up after `written` bytes.
    GaveUp {
        written: usize,
    },
}

impl<W: Write> FrameWriter<W> {
    fn new(port: W) -> Self {
        FrameWriter {
            port,
            torn: false,
            congested: false,
            error: None,
            frames_written: 0,
            bytes_written: 0,
            frames_dropped: 0,
            frames_torn: 0,
        }
    }

    /// The node's transmit callback: whether the frame went out whole.
    fn send(&mut self, frame: &[u8]) -> bool {
        if self.error.is_some() {
            return false;
        }
        let deadline = Instant::now()
            + if self.congested {
                Duration::ZERO
            } else {
                WRITE_RETRY
            };
        if self.torn {
            // The receiver's decoder drops the torn bytes at this delimiter (one damaged frame)
            // and the next frame arrives clean.
            match self.write_within(&[0], deadline) {
                Ok(Outcome::Whole) => self.torn = false,
                Ok(Outcome::GaveUp { .. }) => return self.dropped(),
                Err(e) => return self.fail(e),
            }
        }
        match self.write_within(frame, deadline) {
            Ok(Outcome::Whole) => {
                self.congested = false;
                self.frames_written += 1;
                true
            }
            Ok(Outcome::GaveUp { written }) => {
                if written > 0 {
                    self.torn = true;
                    self.frames_torn += 1;
                }
                self.dropped()
            }
            Err(e) => self.fail(e),
        }
    }

    fn dropped(&mut self) -> bool {
        self.congested = true;
        self.frames_dropped += 1;
        false
    }

    fn fail(&mut self, e: io::Error) -> bool {
        self.error = Some(e);
        false
    }

    /// Writes all of `bytes`, retrying on would-block until `deadline` (at least one attempt).
    fn write_within(&mut self, bytes: &[u8], deadline: Instant) -> io::Result<Outcome> {
        let mut written = 0;
        while written < bytes.len() {
            match self.port.write(&bytes[written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.bytes_written += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Ok(Outcome::GaveUp { written });
                    }
                    std::thread::sleep(RETRY_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Outcome::Whole)
    }

    /// Pushes out anything the port buffers; a port that would block is flushed next time.
    fn flush(&mut self) -> io::Result<()> {
        match self.port.flush() {
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                Ok(())
            }
            r => r,
        }
    }
}

/// Opens a serial port or pseudo-terminal for the simulator to write to.
///
/// * `O_NOCTTY`: the port must never become the controlling terminal of the simulator (under
///   systemd it is a session leader without one), or its hang-up would signal the process.
/// * `O_NONBLOCK`: a UART does not wait for the receiver; a full port makes [`run`] retry
///   briefly and then drop the frame, instead of stalling the simulated node.
/// * A terminal is put in raw mode at 115 200 baud, 8N1 (`PROTOCOL.md`): pqlink is binary, and a
///   terminal's default output processing would turn every `0x0A` byte into `0x0D 0x0A`.
/// * An existing regular file is truncated, so a run can be recorded to a file. The path is never
///   created: a mistyped device path must fail, not leave a file in `/dev`.
pub fn open_port(path: &str) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    if file.metadata()?.is_file() {
        file.set_len(0)?;
        return Ok(file);
    }
    make_raw(&file)?;
    Ok(file)
}

/// Raw mode, 115 200 baud, 8N1, no flow control, for a terminal; nothing for anything else.
fn make_raw(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file` for the whole call; isatty only reads it.
    if unsafe { libc::isatty(fd) } != 1 {
        return Ok(()); // a FIFO or a character device that is not a terminal: write as is
    }
    // SAFETY: termios is plain old data, fully written by tcgetattr before it is read.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and a valid pointer to a termios.
    if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `t` is a valid termios; these functions only modify it.
    unsafe {
        libc::cfmakeraw(&mut t);
        libc::cfsetispeed(&mut t, libc::B115200);
        libc::cfsetospeed(&mut t, libc::B115200);
    }
    t.c_cflag |= libc::CLOCAL | libc::CREAD;
    t.c_cflag &= !(libc::CSTOPB | libc::PARENB | libc::CRTSCTS);
    // SAFETY: valid descriptor and termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port that refuses (would block) `refuse` times, then takes at most `chunk` bytes per
    /// write and `capacity` bytes in all before blocking for good.
    struct Fussy {
        out: Vec<u8>,
        refuse: usize,
        chunk: usize,
        capacity: usize,
    }

    impl Write for Fussy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.refuse > 0 || self.capacity == 0 {
                self.refuse = self.refuse.saturating_sub(1);
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.chunk).min(self.capacity);
            self.capacity -= n;
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn fussy(refuse: usize, chunk: usize, capacity: usize) -> FrameWriter<Fussy> {
        FrameWriter::new(Fussy {
            out: Vec::new(),
            refuse,
            chunk,
            capacity,
        })
    }

    #[test]
    fn partial_writes_are_completed() {
        let mut w = fussy(0, 3, usize::MAX);
        assert!(w.send(&[1, 2, 3, 4, 5, 6, 7, 0]));
        assert_eq!(w.port.out, [1, 2, 3, 4, 5, 6, 7, 0]);
        assert_eq!((w.frames_written, w.bytes_written), (1, 8));
    }

    #[test]
    fn a_brief_stall_is_ridden_out() {
        let mut w = fussy(3, 100, usize::MAX);
        assert!(w.send(&[9, 0]));
        assert_eq!((w.frames_written, w.frames_dropped), (1, 0));
    }

    #[test]
    fn a_torn_frame_is_closed_by_a_delimiter_before_the_next() {
        // Two bytes go out, then the port blocks for longer than the retry window.
        let mut w = fussy(0, 100, 2);
        assert!(!w.send(&[3, 4, 5, 0]));
        assert_eq!((w.frames_dropped, w.frames_torn), (1, 1));
        w.port.capacity = usize::MAX;
        assert!(w.send(&[6, 0]));
        assert_eq!(w.port.out, [3, 4, 0, 6, 0]);
    }

    #[test]
    fn a_dead_port_drops_frames_without_waiting_each_time() {
        let mut w = fussy(usize::MAX, 100, usize::MAX);
        let t = Instant::now();
        for _ in 0..100 {
            assert!(!w.send(&[1, 0]));
        }
        assert_eq!((w.frames_dropped, w.frames_torn), (100, 0));
        // One retry window for the first frame, one attempt each for the others.
        assert!(t.elapsed() < WRITE_RETRY * 10, "{:?}", t.elapsed());
    }

    #[test]
    fn a_hard_error_is_kept_for_the_run_to_return() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = FrameWriter::new(Closed);
        assert!(!w.send(&[1, 0]));
        assert_eq!(w.error.map(|e| e.raw_os_error()), Some(Some(libc::EIO)));
    }

    #[test]
    fn speed_factors_map_to_paces() {
        assert_eq!(Pace::from_speed(0.0), Some(Pace::Unpaced));
        assert_eq!(Pace::from_speed(1.0), Some(Pace::RealTime));
        assert_eq!(Pace::from_speed(20.0), Some(Pace::Accelerated(20.0)));
        assert_eq!(Pace::from_speed(-1.0), None);
        assert_eq!(Pace::from_speed(f64::NAN), None);
    }
}
