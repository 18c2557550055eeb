//! An ADS131M04 on the Raspberry Pi's own SPI bus, run as a sensor node inside the edge service
//! (Cargo feature `rpi`).
//!
//! The same driver (`kare_firmware::ads131m04`) and the same node loop (`kare_firmware::node`) as
//! on the Pico: a thread waits for DRDY, reads a sample and runs [`Node::run_once`], and the
//! pqlink frames it makes go to a caller-supplied [`std::io::Write`] sink. Give it the master
//! side of a [`crate::sim::pty::Pty`] (or one end of a pipe or `UnixStream`), and the pqlink source
//! reads the other end exactly as it reads a serial sensor node.
//!
//! # Hardware
//!
//! * SPI: `/dev/spidev<spi_bus>.<cs>` (SPI0 CE0 = BCM 8 by default: SCLK BCM 11, MOSI BCM 10,
//!   MISO BCM 9), mode 1, 8 MHz. Enable it with `raspi-config` (Interface Options → SPI) or
//!   `dtparam=spi=on` in `config.txt`; the user needs the `spi` group.
//! * DRDY on a GPIO input (BCM 25 by default), SYNC/RESET on an optional GPIO output (BCM 24).
//!   The user needs the `gpio` group.
//! * CLKIN: the Pi cannot output a clean 8.192 MHz on its own, so fit an 8.192 MHz oscillator:
//!   OSR 1024 then gives 4000 samples/s ([`LocalAdcConfig::clkin_hz`]).
//!
//! # Timing on Linux
//!
//! At 4000 samples/s the thread has 250 µs to take each sample before the ADC overwrites it.
//! A sample lost to scheduling delay shortens the node's clock by one sample. Run the service
//! with a real-time policy (systemd `CPUSchedulingPolicy=fifo`), or use a Pico node on a UART
//! where timing matters.
//!
//! # Testing
//!
//! No test here exercises the hardware: CI has no Pi, no SPI and no ADC. The tests cover the
//! parts that do not need them: the `embedded_io` adapter, the frame queue, the SPI transaction
//! layout, and the configuration.

use embedded_hal::spi::SpiDevice;
use kare_firmware::ads131m04::{self, Ads131m04};
use kare_firmware::detector::Thresholds;
use kare_firmware::node::{Node, NodeConfig, SampleSource};
use kare_firmware::pqlink::{ChannelInfo, FirmwareVersion, CHANNEL_NAME_LEN, MAX_CHANNELS};
use rppal::gpio::{Gpio, InputPin, OutputPin, Trigger};
use rppal::spi::{Bus, Mode, SlaveSelect, Spi};
use std::io::{self, ErrorKind};
use std::sync::mpsc::sync_channel;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod sink;
mod spidev;

use sink::write_frames;
pub use sink::{FrameQueue, IoWrite, IoWriteError};
pub use spidev::SpidevDevice;

/// Waveform kept before a capture's trigger, in samples (100 ms at 4000 samples/s).
pub const CAPTURE_PRE: usize = 400;
/// Samples in a whole capture (500 ms at 4000 samples/s), as on the Pico.
pub const CAPTURE_TOTAL: usize = 2000;
/// Frames the queue between the sampling thread and the sink holds (about half a second of
/// traffic). When it is full the node drops frames and counts them rather than wait.
pub const QUEUE_FRAMES: usize = 64;
/// Start-up attempts (reset, ID check, configuration) before giving up.
pub const ADC_START_TRIES: u32 = 5;

/// Where the local ADC is and how its node describes itself.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalAdcConfig {
    /// SPI bus: `B` in `/dev/spidevB.C` (0 = SPI0).
    pub spi_bus: u8,
    /// Chip select: `C` in `/dev/spidevB.C` (0 = CE0, BCM 8).
    pub cs: u8,
    /// SPI clock, Hz (the ADS131M04 allows up to 25 MHz).
    pub spi_hz: u32,
    /// BCM number of the GPIO wired to DRDY.
    pub drdy_gpio: u8,
    /// BCM number of the GPIO wired to SYNC/RESET, if it is wired (otherwise tie it high).
    pub sync_reset_gpio: Option<u8>,
    /// How long to wait for DRDY before counting an ADC error (the ADC is silent: no clock, no
    /// supply, unplugged).
    pub drdy_timeout: Duration,
    /// Frequency of the ADC's CLKIN, Hz. With the OSR it sets the sample rate, which must come
    /// out a whole number of hertz.
    pub clkin_hz: u32,
    /// ADC settings: OSR, power mode, gains, enabled channels, input CRC.
    pub adc: ads131m04::Config,
    /// Mains volts per volt at the ADC input (the front-end divider), the same for every channel.
    pub divider_ratio: f32,
    /// Node identity reported in `Hello`.
    pub node_id: u32,
    /// Channel names, in ADC channel order (AIN0, AIN1, ...); at most four, each at most
    /// eight bytes.
    pub channel_names: Vec<String>,
    /// Nominal frequency, 50 or 60 Hz.
    pub nominal_hz: u8,
    /// Thresholds the node uses to decide when to record a waveform capture (volts).
    pub thresholds: Thresholds,
}

impl Default for LocalAdcConfig {
    /// `/dev/spidev0.0` at 8 MHz, DRDY on BCM 25, SYNC/RESET on BCM 24, an 8.192 MHz CLKIN at
    /// OSR 1024 (4000 samples/s, gain 1), the Pico's 801:1 divider, channels VA/VB/VC, 50 Hz,
    /// 230 V.
    fn default() -> Self {
        LocalAdcConfig {
            spi_bus: 0,
            cs: 0,
            spi_hz: 8_000_000,
            drdy_gpio: 25,
            sync_reset_gpio: Some(24),
            drdy_timeout: Duration::from_millis(100),
            clkin_hz: ads131m04::CLKIN_HZ,
            adc: ads131m04::Config::default(),
            divider_ratio: 801.0,
            node_id: 0,
            channel_names: ["VA", "VB", "VC"].map(String::from).to_vec(),
            nominal_hz: 50,
            thresholds: Thresholds::typical(230.0),
        }
    }
}

impl LocalAdcConfig {
    /// The spidev path, e.g. `/dev/spidev0.0`.
    pub fn spidev_path(&self) -> String {
        format!("/dev/spidev{}.{}", self.spi_bus, self.cs)
    }

    /// Samples per second per channel: `clkin_hz / 2 / OSR`, if that is a whole number.
    pub fn sample_rate_hz(&self) -> io::Result<u32> {
        let mhz = self.adc.osr.data_rate_mhz(self.clkin_hz);
        if mhz == 0 || !mhz.is_multiple_of(1000) {
            return Err(invalid(format!(
                "CLKIN {} Hz at OSR {} gives {}.{:03} samples/s; the node needs a whole number",
                self.clkin_hz,
                self.adc.osr.ratio(),
                mhz / 1000,
                mhz % 1000
            )));
        }
        u32::try_from(mhz / 1000).map_err(|_| invalid("sample rate out of range".into()))
    }

    /// The node's configuration: channel map with volts per ADC code (gain and divider), rate,
    /// thresholds. Checked as [`Node::new`] checks it.
    pub fn node_config(&self) -> io::Result<NodeConfig> {
        if self.channel_names.is_empty() || self.channel_names.len() > MAX_CHANNELS {
            return Err(invalid(format!(
                "{} channel names; the ADS131M04 has 1 to {MAX_CHANNELS}",
                self.channel_names.len()
            )));
        }
        let mut channels = heapless::Vec::new();
        for (i, name) in self.channel_names.iter().enumerate() {
            let name = heapless::String::try_from(name.as_str()).map_err(|_| {
                invalid(format!(
                    "channel name {name:?} is longer than {CHANNEL_NAME_LEN} bytes"
                ))
            })?;
            let info = ChannelInfo {
                name,
                volts_per_unit: self.adc.gains[i].volts_per_code() * self.divider_ratio,
            };
            // At most MAX_CHANNELS names (checked above).
            let _ = channels.push(info);
        }
        let config = NodeConfig {
            node_id: self.node_id,
            firmware: firmware_version(),
            channels,
            nominal_hz: self.nominal_hz,
            sample_rate_hz: self.sample_rate_hz()?,
            thresholds: self.thresholds,
        };
        Node::<1, 1>::new(config.clone())
            .map_err(|e| invalid(format!("local ADC node configuration: {e}")))?;
        Ok(config)
    }
}

/// Opens the ADC, resets and configures it, and starts the sampling thread, which sends pqlink
/// frames to `sink` until `sink` fails (for example because its reader closed it).
///
/// Errors from opening the SPI device or the GPIOs, or from an ADC that does not answer, come
/// back here and say what to check. The thread's own result says why it stopped.
pub fn spawn_local_adc(
    cfg: LocalAdcConfig,
    sink: impl io::Write + Send + 'static,
) -> io::Result<JoinHandle<io::Result<()>>> {
    let node_config = cfg.node_config()?;
    let path = cfg.spidev_path();
    let spi = open_spi(&cfg, &path)?;
    let gpio = Gpio::new().map_err(|e| {
        io::Error::other(format!(
            "cannot open the GPIO controller: {e}: is this a Raspberry Pi, and is the user in the \
             gpio group?"
        ))
    })?;
    let pin = |bcm: u8, what: &str| {
        gpio.get(bcm).map_err(|e| {
            io::Error::other(format!(
                "cannot use GPIO {bcm} (BCM) for {what}: {e}: check the pin number and that no \
                 other program holds it"
            ))
        })
    };
    let mut drdy = pin(cfg.drdy_gpio, "DRDY")?.into_input_pullup();
    drdy.set_interrupt(Trigger::FallingEdge, None)
        .map_err(|e| {
            io::Error::other(format!(
                "cannot watch GPIO {} (DRDY) for falling edges: {e}",
                cfg.drdy_gpio
            ))
        })?;
    let mut sync_reset = match cfg.sync_reset_gpio {
        Some(bcm) => Some(pin(bcm, "SYNC/RESET")?.into_output_high()),
        None => None,
    };

    let mut adc = Ads131m04::new(SpidevDevice::new(spi));
    let id = start_adc(&mut adc, sync_reset.as_mut(), &cfg.adc).map_err(|e| {
        io::Error::other(format!(
            "ADS131M04 on {path} does not answer ({e}): check its wiring, its supply and its \
             CLKIN clock"
        ))
    })?;
    let node: Box<Node<CAPTURE_PRE, CAPTURE_TOTAL>> =
        Box::new(Node::new(node_config).map_err(|e| invalid(e.to_string()))?);
    tracing::info!(
        "local ADC: ADS131M04 (ID {id:#06x}) on {path}, DRDY on GPIO {}, {} samples/s",
        cfg.drdy_gpio,
        node.config().sample_rate_hz
    );

    let (tx, rx) = sync_channel(QUEUE_FRAMES);
    let writer = std::thread::Builder::new()
        .name("kare-local-adc-tx".into())
        .spawn(move || write_frames(rx, sink))?;
    std::thread::Builder::new()
        .name("kare-local-adc".into())
        .spawn(move || {
            // Keep SYNC/RESET driven high for as long as the thread runs (rppal releases a pin
            // when it is dropped).
            let _sync_reset = sync_reset;
            let mut port = IoWrite::new(FrameQueue::new(tx));
            sample_loop(&mut adc, &mut drdy, cfg.drdy_timeout, node, &mut port);
            // The queue closed: the writer has stopped and knows why.
            drop(port);
            match writer.join() {
                Ok(result) => result,
                Err(_) => Err(io::Error::other("local ADC: the frame writer panicked")),
            }
        })
}

/// Runs the node until the frame queue's reader is gone.
fn sample_loop<S: SpiDevice>(
    adc: &mut Ads131m04<S>,
    drdy: &mut InputPin,
    timeout: Duration,
    mut node: Box<Node<CAPTURE_PRE, CAPTURE_TOTAL>>,
    port: &mut IoWrite<FrameQueue>,
) {
    let mut silent = false;
    while !port.get_ref().is_closed() {
        match wait_low(drdy, timeout) {
            Ok(true) => {
                if silent {
                    tracing::info!("local ADC: DRDY is back");
                    silent = false;
                }
                node.run_once(adc, port);
            }
            Ok(false) => {
                if !silent {
                    tracing::warn!(
                        "local ADC: no DRDY for {timeout:?}; counting ADC errors until it returns"
                    );
                    silent = true;
                }
                node.run_once(&mut NoSample, port);
            }
            Err(e) => {
                tracing::error!("local ADC: cannot wait for DRDY: {e}");
                node.run_once(&mut NoSample, port);
                std::thread::sleep(timeout);
            }
        }
    }
}

/// Waits until `pin` reads low, at most `timeout`; returns whether it did.
fn wait_low(pin: &mut InputPin, timeout: Duration) -> rppal::gpio::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        // The level, not the edge, says a sample is waiting: a sample that became ready while
        // the last one was processed is read at once.
        if pin.is_low() {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        // `reset = false` keeps an edge that came between the level check and this call. Edges
        // of samples already read come back at once and only cost another level check.
        if pin.poll_interrupt(false, Some(deadline - now))?.is_none() {
            return Ok(pin.is_low());
        }
    }
}

fn open_spi(cfg: &LocalAdcConfig, path: &str) -> io::Result<Spi> {
    let bus = match cfg.spi_bus {
        0 => Bus::Spi0,
        1 => Bus::Spi1,
        2 => Bus::Spi2,
        3 => Bus::Spi3,
        4 => Bus::Spi4,
        5 => Bus::Spi5,
        6 => Bus::Spi6,
        n => return Err(invalid(format!("SPI bus {n} does not exist (0 to 6)"))),
    };
    let cs = match cfg.cs {
        0 => SlaveSelect::Ss0,
        1 => SlaveSelect::Ss1,
        2 => SlaveSelect::Ss2,
        n => return Err(invalid(format!("chip select {n}: use 0, 1 or 2"))),
    };
    Spi::new(bus, cs, cfg.spi_hz, Mode::Mode1).map_err(|e| {
        let hint = match &e {
            rppal::spi::Error::Io(io) if io.kind() == ErrorKind::NotFound => {
                "enable SPI with raspi-config (Interface Options → SPI) or dtparam=spi=on"
            }
            rppal::spi::Error::Io(io) if io.kind() == ErrorKind::PermissionDenied => {
                "add the service's user to the spi group"
            }
            _ => "check that SPI is enabled (raspi-config) and the user is in the spi group",
        };
        io::Error::other(format!("cannot open {path}: {e}: {hint}"))
    })
}

/// Hardware reset through SYNC/RESET if wired, then the driver's reset, ID check and
/// configuration, a few times. Returns the ID register.
fn start_adc<S: SpiDevice>(
    adc: &mut Ads131m04<S>,
    mut sync_reset: Option<&mut OutputPin>,
    config: &ads131m04::Config,
) -> Result<u16, ads131m04::Error<S::Error>> {
    let mut delay = rppal::hal::Delay::new();
    let mut last = None;
    for _ in 0..ADC_START_TRIES {
        if let Some(pin) = sync_reset.as_deref_mut() {
            // Low for more than 2048 CLKIN periods (250 µs at 8.192 MHz) resets the ADC.
            pin.set_low();
            std::thread::sleep(Duration::from_millis(1));
            pin.set_high();
            std::thread::sleep(Duration::from_millis(1));
        }
        let started = adc
            .reset(&mut delay)
            .and_then(|()| adc.read_id())
            .and_then(|id| adc.configure(config).map(|()| id));
        match started {
            Ok(id) => return Ok(id),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(last.expect("at least one attempt"))
}

/// The sample source for a DRDY timeout: fails, so the node counts an ADC error, holds the
/// previous sample and reports `ADC_FAULT` in its next heartbeat.
struct NoSample;

impl SampleSource for NoSample {
    type Error = ();
    fn next_sample(&mut self, _out: &mut [i32; MAX_CHANNELS]) -> Result<(), ()> {
        Err(())
    }
}

fn firmware_version() -> FirmwareVersion {
    let part = |s: &str| s.parse().unwrap_or(0);
    FirmwareVersion {
        major: part(env!("CARGO_PKG_VERSION_MAJOR")),
        minor: part(env!("CARGO_PKG_VERSION_MINOR")),
        patch: part(env!("CARGO_PKG_VERSION_PATCH")),
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, msg)
}

#[cfg(test)]
mod tests {
    use super::sink::Chunk;
    use super::*;
    use kare_firmware::pqlink::MAX_WIRE_LEN;
    use kare_firmware::pqlink::{Decoder, Frame};

    /// A node fed a steady three-phase wave for `seconds`, writing to `port`.
    fn run_node<W: embedded_io::Write>(port: &mut W, seconds: u32) -> Node<64, 128> {
        struct Wave(u64);
        impl SampleSource for Wave {
            type Error = ();
            fn next_sample(&mut self, out: &mut [i32; MAX_CHANNELS]) -> Result<(), ()> {
                let t = self.0 as f64 / 4000.0;
                self.0 += 1;
                for (ch, o) in out.iter_mut().take(3).enumerate() {
                    let phase = 2.0 * std::f64::consts::PI * (50.0 * t - ch as f64 / 3.0);
                    *o = (2.0e6 * 2f64.sqrt() * phase.sin()) as i32;
                }
                Ok(())
            }
        }
        let mut node = Node::new(LocalAdcConfig::default().node_config().unwrap()).unwrap();
        let mut wave = Wave(0);
        for _ in 0..seconds * 4000 {
            node.run_once(&mut wave, port);
        }
        node
    }

    #[test]
    fn io_write_carries_the_nodes_frames_to_a_std_writer() {
        let mut port = IoWrite::new(Vec::new());
        let node = run_node(&mut port, 2);
        let bytes = port.into_inner();
        let frames: Vec<Frame> = Decoder::new()
            .feed(&bytes)
            .map(|f| f.expect("every frame decodes"))
            .collect();
        assert!(matches!(frames[0], Frame::Hello(ref h) if h.sample_rate_hz == 4000));
        let halves = frames
            .iter()
            .filter(|f| matches!(f, Frame::HalfCycle(_)))
            .count();
        assert!((196..=200).contains(&halves), "{halves}");
        assert_eq!(node.counters().frames_sent as usize, frames.len());
        assert_eq!(node.counters().half_cycles_dropped, 0);
    }

    #[test]
    fn io_write_turns_std_errors_and_zero_writes_into_errors_the_node_counts() {
        struct Refuses(Option<ErrorKind>);
        impl io::Write for Refuses {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                match self.0 {
                    Some(kind) => Err(kind.into()),
                    None => Ok(0),
                }
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        use embedded_io::{Error as _, Write as _};
        let mut broken = IoWrite::new(Refuses(Some(ErrorKind::BrokenPipe)));
        let err = broken.write(b"abc").unwrap_err();
        assert_eq!(err.kind(), embedded_io::ErrorKind::BrokenPipe);
        let mut full = IoWrite::new(Refuses(None));
        assert_eq!(
            full.write(b"abc").unwrap_err().kind(),
            embedded_io::ErrorKind::WriteZero
        );
        assert_eq!(full.write(b"").unwrap(), 0);
        // write_all would panic on Ok(0); the node just counts the refused frames.
        let node = run_node(&mut full, 1);
        assert_eq!(node.counters().frames_sent, 0);
        assert!(node.counters().half_cycles_dropped >= 95);
    }

    #[test]
    fn a_full_queue_drops_frames_instead_of_waiting_and_a_closed_one_says_so() {
        let (tx, rx) = sync_channel(2);
        let mut queue = FrameQueue::new(tx);
        use io::Write as _;
        assert_eq!(queue.write(&[1; 10]).unwrap(), 10);
        assert_eq!(queue.write(&[2; MAX_WIRE_LEN + 5]).unwrap(), MAX_WIRE_LEN);
        assert_eq!(queue.write(&[3]).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert_eq!(rx.recv().unwrap().as_slice(), &[1; 10]);
        assert_eq!(rx.recv().unwrap().len(), MAX_WIRE_LEN);
        assert!(!queue.is_closed());
        drop(rx);
        assert_eq!(queue.write(&[4]).unwrap_err().kind(), ErrorKind::BrokenPipe);
        assert!(queue.is_closed());
    }

    #[test]
    fn the_writer_thread_forwards_chunks_and_stops_on_a_sink_error() {
        let (tx, rx) = sync_channel(4);
        tx.send(Chunk::from_slice(b"ab").unwrap()).unwrap();
        tx.send(Chunk::from_slice(b"cd").unwrap()).unwrap();
        drop(tx);
        let mut out = Vec::new();
        write_frames(rx, &mut out).unwrap();
        assert_eq!(out, b"abcd");

        let (tx, rx) = sync_channel(4);
        tx.send(Chunk::from_slice(b"ab").unwrap()).unwrap();
        let mut tiny = [0u8; 1];
        let err = write_frames(rx, &mut tiny[..]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WriteZero);
    }

    #[test]
    fn configuration_checks_rate_names_and_scale() {
        let cfg = LocalAdcConfig::default();
        assert_eq!(cfg.spidev_path(), "/dev/spidev0.0");
        assert_eq!(cfg.sample_rate_hz().unwrap(), 4000);
        let node = cfg.node_config().unwrap();
        assert_eq!(node.channels.len(), 3);
        let vpu = node.channels[0].volts_per_unit;
        assert!((vpu - 1.2 / 8_388_608.0 * 801.0).abs() < 1e-9, "{vpu}");

        let odd = LocalAdcConfig {
            clkin_hz: 8_000_000,
            ..LocalAdcConfig::default()
        };
        let err = odd.sample_rate_hz().unwrap_err().to_string();
        assert!(err.contains("3906.250 samples/s"), "{err}");

        let long = LocalAdcConfig {
            channel_names: vec!["PHASE-A-LONG".into()],
            ..LocalAdcConfig::default()
        };
        assert!(long
            .node_config()
            .unwrap_err()
            .to_string()
            .contains("longer"));
        let none = LocalAdcConfig {
            channel_names: vec![],
            ..LocalAdcConfig::default()
        };
        assert!(none.node_config().is_err());
    }
}
