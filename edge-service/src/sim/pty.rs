//! Pseudo-terminal pairs: the demo and the tests put a simulated sensor node on one end and
//! open the other end exactly as a real serial port is opened.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

/// An open pseudo-terminal: write to `master` what a device on the port would send; open
/// `path` like any serial port.
#[derive(Debug)]
pub struct Pty {
    /// The device side.
    pub master: File,
    /// The port side's path, e.g. `/dev/pts/7`.
    pub path: PathBuf,
    /// The port side stays open here so that the master does not see a hang-up while the
    /// reader reconnects.
    _slave: OwnedFd,
}

impl Pty {
    /// Opens a new pair, in raw mode (no echo, no line editing: pqlink is binary).
    pub fn open() -> io::Result<Pty> {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        // SAFETY: openpty writes two descriptors into the provided ints; the name buffer is not
        // used (null), termios and winsize are null (defaults).
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just returned by openpty and are owned by no one else.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        use std::os::fd::AsRawFd;
        for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
            // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(fd, &mut t) == 0 {
                    libc::cfmakeraw(&mut t);
                    libc::tcsetattr(fd, libc::TCSANOW, &t);
                }
            }
        }
        let path = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))?;
        Ok(Pty {
            master,
            path,
            _slave: slave,
        })
    }
}

impl Pty {
    /// The parts: the device side, the port path, and the port-side descriptor openpty gave
    /// (for a caller that must close it once the port has been opened elsewhere).
    pub fn into_parts(self) -> (File, PathBuf, OwnedFd) {
        (self.master, self.path, self._slave)
    }
}

/// Makes writes to `file` fail with `WouldBlock` instead of waiting when the reader is not
/// reading, so a writer that must not hang (the demo's simulator) can count and move on.
pub fn set_nonblocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this File owns; F_GETFL/F_SETFL only change status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
