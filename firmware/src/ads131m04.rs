//! Driver for the TI ADS131M04: four-channel, 24-bit, simultaneous-sampling delta-sigma ADC
//! (datasheet SBAS760), over an embedded-hal 1.0 [`SpiDevice`].
//!
//! # How the device talks
//!
//! * **SPI mode 1** (CPOL = 0, CPHA = 1), MSB first, see [`SPI_MODE`]; the bus may run up to
//!   25 MHz. Chip select frames every exchange; the `SpiDevice` handles it.
//! * Everything happens in **frames** of six words. The word size is 24 bits after reset
//!   (`MODE.WLENGTH = 01b`), and this driver keeps it so: a frame is 18 bytes.
//!   * Host → device: command word, then data words (WREG only), then the input-CRC word if
//!     `MODE.RX_CRC_EN` is set, then zero words up to six.
//!   * Device → host: response word, the four channel words (24-bit two's complement, MSB
//!     first), and the output-CRC word.
//! * 16-bit commands, responses, register values and CRCs sit **MSB-aligned** in their 24-bit
//!   word, followed by a zero byte.
//! * The response to a command arrives in the **next** frame. So every command here is a pair of
//!   frames: the command, then a `NULL` whose response word is the answer. After a `NULL` the
//!   response word is the STATUS register, which is what [`Ads131m04::read_frame`] returns.
//! * **CRC** (both directions): CRC-16-CCITT, polynomial 0x1021, initial value 0xFFFF, not
//!   reflected, no final XOR (catalogue name CRC-16/IBM-3740), over all bytes of the words
//!   before the CRC word, padding bytes included. The output CRC is always sent and always
//!   checked here; the input CRC is optional ([`Config::input_crc`]).
//!
//! # Output data rate
//!
//! `f_DATA = f_CLKIN / 2 / OSR`: the modulator runs at half the CLKIN frequency. With the nominal
//! 8.192 MHz CLKIN, OSR 1024 gives 4 kSPS (the reset default) and OSR 128 gives 32 kSPS; see
//! [`Osr::data_rate_hz`]. Conversions run continuously once the device has a clock; the host
//! reads each one with [`Ads131m04::read_frame`] when DRDY falls.
//!
//! # Assumptions
//!
//! Checked against the ADS131M0x family datasheets' command table (Table 8-11), register map
//! (Table 8-12) and CRC description. Assumed rather than verified on hardware: that a full
//! six-word frame is always acceptable (this driver never sends short frames), and that
//! t_REGACQ = 5 µs after a RESET is enough before the next frame ([`T_REGACQ_NS`]).

use core::fmt;

use crc::{Crc, CRC_16_IBM_3740};
use embedded_hal::delay::DelayNs;
use embedded_hal::spi::{Mode, SpiDevice, MODE_1};

/// The SPI mode the ADS131M04 needs: CPOL = 0, CPHA = 1.
pub const SPI_MODE: Mode = MODE_1;

/// Number of ADC channels.
pub const CHANNELS: usize = 4;

/// Bytes per word at the default 24-bit word length.
pub const WORD_LEN: usize = 3;

/// Words per frame: response/command, four channels, CRC.
pub const FRAME_WORDS: usize = 2 + CHANNELS;

/// Bytes per frame at 24-bit words: 18.
pub const FRAME_LEN: usize = FRAME_WORDS * WORD_LEN;

/// Nominal CLKIN frequency, 8.192 MHz.
pub const CLKIN_HZ: u32 = 8_192_000;

/// Time to wait after a RESET before the next frame (t_REGACQ, 5 µs).
pub const T_REGACQ_NS: u32 = 5_000;

/// Full-scale input with the internal 1.2 V reference at gain 1: ±1.2 V.
pub const VREF_VOLTS: f32 = 1.2;

/// The CRC of both directions (CRC-16/IBM-3740: poly 0x1021, init 0xFFFF, no reflection).
pub const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// Command words (Table 8-11) and the responses they produce in the following frame.
pub mod command {
    /// No operation; the next response is the STATUS register.
    pub const NULL: u16 = 0x0000;
    /// Reset the device to register defaults (latched at the end of the frame).
    pub const RESET: u16 = 0x0011;
    /// Enter standby (conversions stop).
    pub const STANDBY: u16 = 0x0022;
    /// Leave standby.
    pub const WAKEUP: u16 = 0x0033;
    /// Lock the interface: only NULL, UNLOCK and RREG are accepted.
    pub const LOCK: u16 = 0x0555;
    /// Unlock the interface.
    pub const UNLOCK: u16 = 0x0655;
    /// Response to RESET from an ADS131M04 (`0xFF20 | channel count`).
    pub const RESET_ACK: u16 = 0xFF24;

    /// RREG: read `count` (1..=128) registers from `addr` (6 bits): `101a aaaa annn nnnn`.
    pub const fn rreg(addr: u8, count: u8) -> u16 {
        0xA000 | addr_bits(addr) | count_bits(count)
    }

    /// WREG: write `count` (1..=128) registers from `addr` (6 bits): `011a aaaa annn nnnn`.
    pub const fn wreg(addr: u8, count: u8) -> u16 {
        0x6000 | addr_bits(addr) | count_bits(count)
    }

    /// Response to a WREG of `count` registers from `addr`: `010a aaaa ammm mmmm`.
    pub const fn wreg_ack(addr: u8, count: u8) -> u16 {
        0x4000 | addr_bits(addr) | count_bits(count)
    }

    const fn addr_bits(addr: u8) -> u16 {
        ((addr as u16) & 0x3F) << 7
    }

    const fn count_bits(count: u8) -> u16 {
        (count.saturating_sub(1) as u16) & 0x7F
    }
}

/// Register addresses (Table 8-12).
pub mod reg {
    /// ID (read-only): `0010b`, CHANCNT\[3:0\] = 4, reserved byte.
    pub const ID: u8 = 0x00;
    /// STATUS (read-only); see [`super::status`].
    pub const STATUS: u8 = 0x01;
    /// MODE: CRC settings, word length, SPI timeout, DRDY behaviour; see [`super::mode`].
    pub const MODE: u8 = 0x02;
    /// CLOCK: channel enables, turbo, OSR, power mode; see [`super::clock`].
    pub const CLOCK: u8 = 0x03;
    /// GAIN1: PGA gain of channels 0..3, three bits each at bits 2:0, 6:4, 10:8, 14:12.
    pub const GAIN1: u8 = 0x04;
    /// CFG: global chop and current-detect settings.
    pub const CFG: u8 = 0x06;
    /// THRSHLD_MSB: current-detect threshold, high bits.
    pub const THRSHLD_MSB: u8 = 0x07;
    /// THRSHLD_LSB: current-detect threshold low bits and DC-block filter setting.
    pub const THRSHLD_LSB: u8 = 0x08;
    /// REGMAP_CRC (read-only): CRC of the register map.
    pub const REGMAP_CRC: u8 = 0x3E;

    /// CHn_CFG of channel `n` (0..3): phase delay and input mux. Each channel has five
    /// registers (CFG, OCAL_MSB, OCAL_LSB, GCAL_MSB, GCAL_LSB) starting at 0x09.
    pub const fn ch_cfg(n: u8) -> u8 {
        0x09 + 5 * n
    }
}

/// STATUS register bits (also the response word of every frame after a NULL).
pub mod status {
    /// The interface is locked.
    pub const LOCK: u16 = 1 << 15;
    /// The ADC channels resynchronised (SYNC pulse or clock glitch).
    pub const F_RESYNC: u16 = 1 << 14;
    /// The register map CRC changed.
    pub const REG_MAP: u16 = 1 << 13;
    /// The previous frame failed its input CRC check.
    pub const CRC_ERR: u16 = 1 << 12;
    /// CRC type in use: 0 = CCITT, 1 = ANSI.
    pub const CRC_TYPE: u16 = 1 << 11;
    /// A reset happened since MODE.RESET was last cleared.
    pub const RESET: u16 = 1 << 10;
    /// Word length field (bits 9:8): 00 = 16, 01 = 24, 10 = 32 zero-padded, 11 = 32 sign-extended.
    pub const WLENGTH_MASK: u16 = 0b11 << 8;
    /// Data-ready flags of channels 0..3 (bits 3:0).
    pub const DRDY_MASK: u16 = 0x000F;
}

/// MODE register bits.
pub mod mode {
    /// Register-map CRC enable.
    pub const REGCRC_EN: u16 = 1 << 13;
    /// Input (host → device) CRC enable.
    pub const RX_CRC_EN: u16 = 1 << 12;
    /// CRC type: 0 = CCITT (used here), 1 = ANSI.
    pub const CRC_TYPE: u16 = 1 << 11;
    /// Reset flag; written 0 to clear.
    pub const RESET: u16 = 1 << 10;
    /// Word length 24 bits (WLENGTH = 01b, the default).
    pub const WLENGTH_24: u16 = 0b01 << 8;
    /// SPI timeout enable (the default).
    pub const TIMEOUT: u16 = 1 << 4;
    /// Reset value of MODE.
    pub const DEFAULT: u16 = 0x0510;
}

/// CLOCK register fields.
pub mod clock {
    /// Enable bit of channel `n` (bits 8..11).
    pub const fn ch_en(n: usize) -> u16 {
        1 << (8 + n)
    }
    /// Turbo mode (OSR 64).
    pub const TBM: u16 = 1 << 5;
    /// Shift of OSR\[2:0\].
    pub const OSR_SHIFT: u16 = 2;
    /// Reset value of CLOCK: all channels on, OSR 1024, high-resolution power.
    pub const DEFAULT: u16 = 0x0F0E;
}

/// Oversampling ratio (CLOCK.OSR and CLOCK.TBM).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Osr {
    /// 64 (turbo mode): 64 kSPS at 8.192 MHz CLKIN.
    Osr64,
    /// 128: 32 kSPS.
    Osr128,
    /// 256: 16 kSPS.
    Osr256,
    /// 512: 8 kSPS.
    Osr512,
    /// 1024: 4 kSPS (reset default).
    #[default]
    Osr1024,
    /// 2048: 2 kSPS.
    Osr2048,
    /// 4096: 1 kSPS.
    Osr4096,
    /// 8192: 500 SPS.
    Osr8192,
    /// 16256 (not 16384): about 252 SPS.
    Osr16256,
}

impl Osr {
    /// The oversampling ratio as a number.
    pub const fn ratio(self) -> u32 {
        match self {
            Osr::Osr64 => 64,
            Osr::Osr128 => 128,
            Osr::Osr256 => 256,
            Osr::Osr512 => 512,
            Osr::Osr1024 => 1024,
            Osr::Osr2048 => 2048,
            Osr::Osr4096 => 4096,
            Osr::Osr8192 => 8192,
            Osr::Osr16256 => 16256,
        }
    }

    /// OSR\[2:0\] and TBM bits of the CLOCK register.
    pub const fn clock_bits(self) -> u16 {
        let (tbm, osr) = match self {
            Osr::Osr64 => (clock::TBM, 0),
            Osr::Osr128 => (0, 0),
            Osr::Osr256 => (0, 1),
            Osr::Osr512 => (0, 2),
            Osr::Osr1024 => (0, 3),
            Osr::Osr2048 => (0, 4),
            Osr::Osr4096 => (0, 5),
            Osr::Osr8192 => (0, 6),
            Osr::Osr16256 => (0, 7),
        };
        tbm | (osr << clock::OSR_SHIFT)
    }

    /// Output data rate in samples per second per channel: `clkin_hz / 2 / OSR`.
    /// `Osr1024.data_rate_hz(8_192_000)` is 4000.0.
    pub fn data_rate_hz(self, clkin_hz: u32) -> f32 {
        clkin_hz as f32 / 2.0 / self.ratio() as f32
    }

    /// Output data rate in millihertz, exact to the millihertz below:
    /// `clkin_hz × 1000 / (2 × OSR)`.
    pub const fn data_rate_mhz(self, clkin_hz: u32) -> u64 {
        clkin_hz as u64 * 1000 / (2 * self.ratio() as u64)
    }
}

/// Modulator power mode (CLOCK.PWR); the CLKIN frequency must suit it (datasheet 6.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PowerMode {
    /// Very-low-power (PWR = 00b).
    VeryLowPower,
    /// Low-power (PWR = 01b).
    LowPower,
    /// High-resolution (PWR = 10b), the reset default.
    #[default]
    HighResolution,
}

impl PowerMode {
    /// PWR\[1:0\] bits of the CLOCK register.
    pub const fn clock_bits(self) -> u16 {
        match self {
            PowerMode::VeryLowPower => 0b00,
            PowerMode::LowPower => 0b01,
            PowerMode::HighResolution => 0b10,
        }
    }
}

/// PGA gain of one channel (GAIN1.PGAGAINn). Full scale is ±1.2 V / gain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Gain {
    /// ×1 (reset default).
    #[default]
    X1,
    /// ×2.
    X2,
    /// ×4.
    X4,
    /// ×8.
    X8,
    /// ×16.
    X16,
    /// ×32.
    X32,
    /// ×64.
    X64,
    /// ×128.
    X128,
}

impl Gain {
    /// The three-bit PGAGAIN code (0 = ×1 … 7 = ×128).
    pub const fn bits(self) -> u16 {
        self as u16
    }

    /// The gain as a number.
    pub const fn factor(self) -> u32 {
        1 << (self as u32)
    }

    /// Volts at the input for one LSB of a 24-bit code: `1.2 V / gain / 2^23`.
    pub fn volts_per_code(self) -> f32 {
        VREF_VOLTS / self.factor() as f32 / (1u32 << 23) as f32
    }
}

/// Settings [`Ads131m04::configure`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// Oversampling ratio (sets the output data rate).
    pub osr: Osr,
    /// Modulator power mode.
    pub power: PowerMode,
    /// PGA gain per channel.
    pub gains: [Gain; CHANNELS],
    /// Which channels convert (a disabled channel reads 0).
    pub enabled: [bool; CHANNELS],
    /// Whether the device checks a CRC on every host frame (MODE.RX_CRC_EN). The driver then
    /// appends that CRC to every frame it sends.
    pub input_crc: bool,
}

impl Default for Config {
    /// The device's reset settings: OSR 1024, high resolution, gain 1, all channels on, no input
    /// CRC.
    fn default() -> Self {
        Config {
            osr: Osr::Osr1024,
            power: PowerMode::HighResolution,
            gains: [Gain::X1; CHANNELS],
            enabled: [true; CHANNELS],
            input_crc: false,
        }
    }
}

impl Config {
    /// The CLOCK register value: channel enables, OSR/TBM, power mode.
    pub const fn clock_register(&self) -> u16 {
        let mut value = self.osr.clock_bits() | self.power.clock_bits();
        let mut n = 0;
        while n < CHANNELS {
            if self.enabled[n] {
                value |= clock::ch_en(n);
            }
            n += 1;
        }
        value
    }

    /// The GAIN1 register value: channel `n`'s gain code at bits `4n + 2 ..= 4n`.
    pub const fn gain_register(&self) -> u16 {
        let mut value = 0;
        let mut n = 0;
        while n < CHANNELS {
            value |= self.gains[n].bits() << (4 * n);
            n += 1;
        }
        value
    }

    /// The MODE register value: the reset value with the RESET flag cleared and RX_CRC_EN as
    /// configured (24-bit words, CCITT CRC, SPI timeout on, DRDY defaults).
    pub const fn mode_register(&self) -> u16 {
        let base = mode::WLENGTH_24 | mode::TIMEOUT;
        if self.input_crc {
            base | mode::RX_CRC_EN
        } else {
            base
        }
    }
}

/// One conversion of all four channels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sample4 {
    /// The frame's response word: the STATUS register when the previous command was NULL (always
    /// so in steady-state reading); see [`status`].
    pub status: u16,
    /// Channel codes, 24-bit two's complement sign-extended: −8 388 608 ..= 8 388 607.
    pub ch: [i32; CHANNELS],
}

/// What can go wrong talking to the ADC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI bus or device failed.
    Spi(E),
    /// The ID register does not say "four channels" (CHANCNT ≠ 4): not an ADS131M04, or no
    /// device answering.
    BadId(u16),
    /// The output CRC of a received frame does not match its contents.
    CrcMismatch {
        /// CRC computed over the received response and channel words.
        expected: u16,
        /// CRC word the device sent.
        got: u16,
    },
    /// A command was not acknowledged as the datasheet says it should be.
    UnexpectedResponse {
        /// Response the command should produce.
        expected: u16,
        /// Response word received.
        got: u16,
    },
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spi(e) => write!(f, "ADS131M04: SPI error: {e:?}"),
            Error::BadId(id) => write!(
                f,
                "ADS131M04: ID register reads {id:#06x}, expected 0x24xx (four channels)"
            ),
            Error::CrcMismatch { expected, got } => write!(
                f,
                "ADS131M04: output CRC mismatch (computed {expected:#06x}, received {got:#06x})"
            ),
            Error::UnexpectedResponse { expected, got } => write!(
                f,
                "ADS131M04: unexpected response {got:#06x} (expected {expected:#06x})"
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// Sign-extend a 24-bit two's complement code held in the low 24 bits.
pub const fn sign_extend_24(raw: u32) -> i32 {
    ((raw << 8) as i32) >> 8
}

/// The ADS131M04 on an SPI device (chip select included).
#[derive(Debug)]
pub struct Ads131m04<SPI> {
    spi: SPI,
    /// Whether the device currently expects an input CRC word (MODE.RX_CRC_EN).
    input_crc: bool,
}

impl<SPI: SpiDevice> Ads131m04<SPI> {
    /// Wrap `spi`, which must be configured for [`SPI_MODE`]. Assumes the device is in its reset
    /// state (no input CRC); call [`reset`](Self::reset) to make sure.
    pub fn new(spi: SPI) -> Self {
        Ads131m04 {
            spi,
            input_crc: false,
        }
    }

    /// Give the SPI device back.
    pub fn release(self) -> SPI {
        self.spi
    }

    /// Software reset: send RESET, wait t_REGACQ, and check the 0xFF24 acknowledgment.
    /// All registers return to their defaults (input CRC off, OSR 1024, gain 1).
    pub fn reset<D: DelayNs>(&mut self, delay: &mut D) -> Result<(), Error<SPI::Error>> {
        self.exchange(command::RESET, &[])?;
        self.input_crc = false;
        delay.delay_ns(T_REGACQ_NS);
        self.expect_response(command::RESET_ACK)
    }

    /// Read the ID register and check that it describes a four-channel device.
    pub fn read_id(&mut self) -> Result<u16, Error<SPI::Error>> {
        let id = self.read_register(reg::ID)?;
        if (id >> 8) & 0x0F != CHANNELS as u16 {
            return Err(Error::BadId(id));
        }
        Ok(id)
    }

    /// Read one register (RREG, then a NULL frame carrying the value).
    pub fn read_register(&mut self, addr: u8) -> Result<u16, Error<SPI::Error>> {
        self.exchange(command::rreg(addr, 1), &[])?;
        let frame = self.exchange(command::NULL, &[])?;
        check_crc(&frame)?;
        Ok(response_word(&frame))
    }

    /// Write one register (WREG with one data word, then a NULL frame whose response must be the
    /// WREG acknowledgment).
    pub fn write_register(&mut self, addr: u8, value: u16) -> Result<(), Error<SPI::Error>> {
        self.exchange(command::wreg(addr, 1), &[value])?;
        if addr == reg::MODE {
            // The new MODE applies from the next frame on.
            self.input_crc = value & mode::RX_CRC_EN != 0;
        }
        self.expect_response(command::wreg_ack(addr, 1))
    }

    /// Apply `config`: write MODE (clears the reset flag, sets input CRC), CLOCK (channel
    /// enables, OSR, power) and GAIN1, each acknowledged.
    pub fn configure(&mut self, config: &Config) -> Result<(), Error<SPI::Error>> {
        self.write_register(reg::MODE, config.mode_register())?;
        self.write_register(reg::CLOCK, config.clock_register())?;
        self.write_register(reg::GAIN1, config.gain_register())
    }

    /// Read one conversion (call when DRDY falls): send a NULL frame and decode the response,
    /// the four channels (sign-extended) and check the output CRC.
    pub fn read_frame(&mut self) -> Result<Sample4, Error<SPI::Error>> {
        let frame = self.exchange(command::NULL, &[])?;
        check_crc(&frame)?;
        let mut ch = [0i32; CHANNELS];
        for (n, value) in ch.iter_mut().enumerate() {
            let w = &frame[WORD_LEN * (1 + n)..WORD_LEN * (2 + n)];
            *value = sign_extend_24(u32::from_be_bytes([0, w[0], w[1], w[2]]));
        }
        Ok(Sample4 {
            status: response_word(&frame),
            ch,
        })
    }

    /// Read the STATUS register (through a NULL frame's response word).
    pub fn read_status(&mut self) -> Result<u16, Error<SPI::Error>> {
        Ok(self.read_frame()?.status)
    }

    /// Put the device in standby (conversions stop).
    pub fn standby(&mut self) -> Result<(), Error<SPI::Error>> {
        self.simple_command(command::STANDBY)
    }

    /// Wake the device from standby.
    pub fn wakeup(&mut self) -> Result<(), Error<SPI::Error>> {
        self.simple_command(command::WAKEUP)
    }

    /// Lock the interface against register writes.
    pub fn lock(&mut self) -> Result<(), Error<SPI::Error>> {
        self.simple_command(command::LOCK)
    }

    /// Unlock the interface.
    pub fn unlock(&mut self) -> Result<(), Error<SPI::Error>> {
        self.simple_command(command::UNLOCK)
    }

    /// Send a command whose acknowledgment is its own echo.
    fn simple_command(&mut self, cmd: u16) -> Result<(), Error<SPI::Error>> {
        self.exchange(cmd, &[])?;
        self.expect_response(cmd)
    }

    /// Clock a NULL frame and require its response word to be `expected`.
    fn expect_response(&mut self, expected: u16) -> Result<(), Error<SPI::Error>> {
        let frame = self.exchange(command::NULL, &[])?;
        check_crc(&frame)?;
        let got = response_word(&frame);
        if got != expected {
            return Err(Error::UnexpectedResponse { expected, got });
        }
        Ok(())
    }

    /// One full-duplex frame: send `cmd`, its `data` words and (if enabled) the input CRC;
    /// return the 18 bytes received.
    fn exchange(&mut self, cmd: u16, data: &[u16]) -> Result<[u8; FRAME_LEN], Error<SPI::Error>> {
        let mut frame = [0u8; FRAME_LEN];
        let words = 1 + data.len();
        debug_assert!(words < FRAME_WORDS);
        put_word(&mut frame, 0, cmd);
        for (i, &value) in data.iter().enumerate() {
            put_word(&mut frame, 1 + i, value);
        }
        if self.input_crc {
            let crc = CRC16.checksum(&frame[..words * WORD_LEN]);
            put_word(&mut frame, words, crc);
        }
        self.spi.transfer_in_place(&mut frame).map_err(Error::Spi)?;
        Ok(frame)
    }
}

/// Write a 16-bit value MSB-aligned into 24-bit word `index`.
fn put_word(frame: &mut [u8; FRAME_LEN], index: usize, value: u16) {
    let [hi, lo] = value.to_be_bytes();
    frame[index * WORD_LEN] = hi;
    frame[index * WORD_LEN + 1] = lo;
    frame[index * WORD_LEN + 2] = 0;
}

/// The 16-bit response word of a received frame.
fn response_word(frame: &[u8; FRAME_LEN]) -> u16 {
    u16::from_be_bytes([frame[0], frame[1]])
}

/// Check a received frame's output CRC (over the response and channel words).
fn check_crc<E>(frame: &[u8; FRAME_LEN]) -> Result<(), Error<E>> {
    let crc_at = (FRAME_WORDS - 1) * WORD_LEN;
    let expected = CRC16.checksum(&frame[..crc_at]);
    let got = u16::from_be_bytes([frame[crc_at], frame[crc_at + 1]]);
    if expected != got {
        return Err(Error::CrcMismatch { expected, got });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words() {
        assert_eq!(command::rreg(reg::ID, 1), 0xA000);
        assert_eq!(command::rreg(reg::GAIN1, 1), 0xA200);
        assert_eq!(command::wreg(reg::CLOCK, 1), 0x6180);
        assert_eq!(command::wreg(reg::CLOCK, 2), 0x6181);
        assert_eq!(command::wreg_ack(reg::CLOCK, 1), 0x4180);
        assert_eq!(command::rreg(reg::REGMAP_CRC, 1), 0xBF00);
        assert_eq!(reg::ch_cfg(3), 0x18);
    }

    #[test]
    fn register_values_of_the_default_config_are_the_reset_values() {
        let c = Config::default();
        assert_eq!(c.clock_register(), clock::DEFAULT);
        assert_eq!(c.gain_register(), 0x0000);
        assert_eq!(c.mode_register(), mode::DEFAULT & !mode::RESET);
    }

    #[test]
    fn gain_and_osr_fields() {
        let c = Config {
            osr: Osr::Osr64,
            power: PowerMode::LowPower,
            gains: [Gain::X1, Gain::X2, Gain::X4, Gain::X128],
            enabled: [true, false, true, false],
            input_crc: true,
        };
        assert_eq!(c.gain_register(), 0x7210);
        assert_eq!(c.clock_register(), 0x0500 | 0x20 | 0x01);
        assert_eq!(c.mode_register(), 0x1110);
        assert_eq!(Osr::Osr16256.clock_bits(), 7 << 2);
        assert_eq!(Gain::X128.factor(), 128);
    }

    #[test]
    fn data_rates() {
        assert_eq!(Osr::Osr1024.data_rate_hz(CLKIN_HZ), 4000.0);
        assert_eq!(Osr::Osr128.data_rate_mhz(CLKIN_HZ), 32_000_000);
        assert_eq!(Osr::Osr64.data_rate_mhz(CLKIN_HZ), 64_000_000);
        assert_eq!(Osr::Osr16256.data_rate_mhz(CLKIN_HZ), 251_968);
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend_24(0x7F_FFFF), 8_388_607);
        assert_eq!(sign_extend_24(0x80_0000), -8_388_608);
        assert_eq!(sign_extend_24(0xFF_FFFF), -1);
        assert_eq!(sign_extend_24(0x00_0001), 1);
    }

    #[test]
    fn crc16_is_ccitt_false() {
        assert_eq!(CRC16.checksum(b"123456789"), 0x29B1);
    }
}
