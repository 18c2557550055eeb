//! Opening a sensor node's serial port for reading: tokio-serial first, and plain termios when
//! the kernel (or an emulator) refuses the ioctl tokio-serial needs.
//!
//! serialport 4 (under tokio-serial) sets the line through `TCGETS2`/`TCSETS2` (termios2, any
//! baud rate) on Linux. A kernel or an emulator without them answers `ENOSYS` ("Function not
//! implemented": qemu-user 7.2, which runs the arm64 binary in the tests) or `ENOTTY`, and the
//! port would never open though the line is fine. Then the port is opened again with the POSIX
//! calls every terminal has (`tcgetattr`, `cfmakeraw`, `cfsetspeed`, `tcsetattr`: `TCGETS`/
//! `TCSETS`), for the standard baud rates only, and read through tokio's `AsyncFd`. On a Pi's
//! kernel termios2 works and the fallback is never taken; when it is, each open says so in the log.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, ReadBuf};

/// An open port, either way.
#[derive(Debug)]
pub enum SerialPort {
    /// Opened by tokio-serial (termios2).
    Native(tokio_serial::SerialStream),
    /// Opened with plain termios after termios2 was refused.
    Termios(TermiosPort),
}

/// Opens `path` at `baud`, 8N1, raw; see the module's comment for the fallback.
pub fn open(path: &str, baud: u32) -> Result<SerialPort, tokio_serial::Error> {
    use tokio_serial::SerialPortBuilderExt;
    match tokio_serial::new(path, baud).open_native_async() {
        Ok(p) => Ok(SerialPort::Native(p)),
        Err(e) if termios2_refused(&e) => match TermiosPort::open(path, baud) {
            Ok(p) => {
                tracing::warn!(
                    port = path,
                    "termios2 is not supported here ({}); opened with plain termios",
                    e.description
                );
                Ok(SerialPort::Termios(p))
            }
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The text of an errno, as serialport (through nix) words it: "Function not implemented".
fn errno_text(code: i32) -> String {
    let s = io::Error::from_raw_os_error(code).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Whether tokio-serial failed on the termios2 ioctl (ENOSYS, ENOTTY), not on the port itself.
fn termios2_refused(e: &tokio_serial::Error) -> bool {
    [libc::ENOSYS, libc::ENOTTY]
        .iter()
        .any(|&c| e.description == errno_text(c))
}

/// A terminal opened with plain termios, read without blocking the runtime.
#[derive(Debug)]
pub struct TermiosPort(AsyncFd<File>);

/// The termios speed constant of a standard baud rate.
fn speed(baud: u32) -> Option<libc::speed_t> {
    Some(match baud {
        300 => libc::B300,
        600 => libc::B600,
        1200 => libc::B1200,
        2400 => libc::B2400,
        4800 => libc::B4800,
        9600 => libc::B9600,
        19200 => libc::B19200,
        38400 => libc::B38400,
        57600 => libc::B57600,
        115200 => libc::B115200,
        230400 => libc::B230400,
        460800 => libc::B460800,
        500000 => libc::B500000,
        921600 => libc::B921600,
        1000000 => libc::B1000000,
        2000000 => libc::B2000000,
        3000000 => libc::B3000000,
        4000000 => libc::B4000000,
        _ => return None,
    })
}

impl TermiosPort {
    /// Opens a terminal raw, 8N1, no flow control, at a standard baud rate.
    pub fn open(path: &str, baud: u32) -> io::Result<TermiosPort> {
        use std::os::unix::fs::OpenOptionsExt;
        let speed = speed(baud).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{baud} baud is not a standard rate termios can set"),
            )
        })?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)?;
        let fd = file.as_raw_fd();
        // SAFETY: termios is plain data, filled by tcgetattr before use; `fd` is open for the
        // whole block (owned by `file`).
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::cfmakeraw(&mut t);
            t.c_cflag |= libc::CREAD | libc::CLOCAL;
            t.c_cflag &= !(libc::CSTOPB | libc::PARENB | libc::CRTSCTS);
            t.c_iflag &= !(libc::IXON | libc::IXOFF);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::cfsetspeed(&mut t, speed) != 0 || libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: the descriptor is `file`'s own: open, and the same, for as long as the
        // AsyncFd (which owns `file`) lives.
        let fd = unsafe { AsyncFd::register_with_interest(file, tokio::io::Interest::READABLE)? };
        Ok(TermiosPort(fd))
    }
}

impl AsyncRead for TermiosPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let fd = &self.get_mut().0;
        loop {
            let mut guard = match fd.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|f| f.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncRead for SerialPort {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SerialPort::Native(p) => Pin::new(p).poll_read(cx, buf),
            SerialPort::Termios(p) => Pin::new(p).poll_read(cx, buf),
        }
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use super::*;
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    #[test]
    fn the_errors_that_mean_no_termios2() {
        let e = |code| tokio_serial::Error::new(tokio_serial::ErrorKind::Unknown, errno_text(code));
        assert!(termios2_refused(&e(libc::ENOSYS)));
        assert!(termios2_refused(&e(libc::ENOTTY)));
        assert!(!termios2_refused(&e(libc::EACCES)));
        assert_eq!(errno_text(libc::ENOSYS), "Function not implemented");
    }

    #[tokio::test]
    async fn a_pty_opened_with_plain_termios_reads() {
        let pty = crate::sim::pty::Pty::open().unwrap();
        let mut port = TermiosPort::open(pty.path.to_str().unwrap(), 115200).unwrap();
        (&pty.master).write_all(b"pqlink").unwrap();
        let mut buf = [0u8; 6];
        tokio::time::timeout(std::time::Duration::from_secs(5), port.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"pqlink");
        assert!(TermiosPort::open(pty.path.to_str().unwrap(), 12345).is_err());
    }
}
