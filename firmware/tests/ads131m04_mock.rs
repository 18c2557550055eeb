//! ADS131M04 driver against embedded-hal-mock: the exact bytes on the wire for each command, and
//! the decoding of data frames.

use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};
use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as DelayTransaction};
use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as SpiTransaction};
use kare_firmware::ads131m04::{
    command, reg, status, Ads131m04, Config, Error, Gain, Osr, PowerMode, Sample4, FRAME_LEN,
    T_REGACQ_NS,
};

/// CRC-16-CCITT, polynomial 0x1021, initial 0xFFFF, MSB first: written out here rather than
/// taken from the driver, so the test checks the driver against the datasheet's definition.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A host → device frame: 16-bit words MSB-aligned in 24-bit words, zero-padded to 18 bytes.
fn tx(words: &[u16]) -> Vec<u8> {
    let mut f = vec![0u8; FRAME_LEN];
    for (i, w) in words.iter().enumerate() {
        f[3 * i] = (w >> 8) as u8;
        f[3 * i + 1] = *w as u8;
    }
    f
}

/// A host → device frame with the input CRC word after `words`.
fn tx_crc(words: &[u16]) -> Vec<u8> {
    let mut f = tx(words);
    let crc = crc16(&f[..3 * words.len()]);
    f[3 * words.len()] = (crc >> 8) as u8;
    f[3 * words.len() + 1] = crc as u8;
    f
}

/// A device → host frame: response word, four 24-bit channel codes, valid output CRC.
fn rx(response: u16, ch: [u32; 4]) -> Vec<u8> {
    let mut f = vec![0u8; FRAME_LEN];
    f[0] = (response >> 8) as u8;
    f[1] = response as u8;
    for (n, c) in ch.iter().enumerate() {
        let at = 3 * (n + 1);
        f[at] = (c >> 16) as u8;
        f[at + 1] = (c >> 8) as u8;
        f[at + 2] = *c as u8;
    }
    let crc = crc16(&f[..15]);
    f[15] = (crc >> 8) as u8;
    f[16] = crc as u8;
    f
}

/// One SpiDevice transaction holding one full-duplex transfer.
fn frame(sent: Vec<u8>, received: Vec<u8>) -> [SpiTransaction<u8>; 3] {
    [
        SpiTransaction::transaction_start(),
        SpiTransaction::transfer_in_place(sent, received),
        SpiTransaction::transaction_end(),
    ]
}

fn expect(frames: Vec<[SpiTransaction<u8>; 3]>) -> SpiMock<u8> {
    let all: Vec<SpiTransaction<u8>> = frames.into_iter().flatten().collect();
    SpiMock::new(&all)
}

/// Whatever the device shifts out while it receives a command (ignored by the driver).
fn junk() -> Vec<u8> {
    vec![0xA5; FRAME_LEN]
}

#[test]
fn reset_sends_reset_waits_and_checks_the_ack() {
    let spi = expect(vec![
        frame(
            vec![
                0x00, 0x11, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            junk(),
        ),
        frame(tx(&[command::NULL]), rx(0xFF24, [0; 4])),
    ]);
    let mut delay = CheckedDelay::new(&[DelayTransaction::delay_ns(T_REGACQ_NS)]);
    let mut adc = Ads131m04::new(spi);
    adc.reset(&mut delay).unwrap();
    adc.release().done();
    delay.done();
}

#[test]
fn reset_without_ack_is_an_error() {
    let spi = expect(vec![
        frame(tx(&[command::RESET]), junk()),
        frame(tx(&[command::NULL]), rx(0x0011, [0; 4])),
    ]);
    let mut delay = CheckedDelay::new(&[DelayTransaction::delay_ns(5_000)]);
    let mut adc = Ads131m04::new(spi);
    assert_eq!(
        adc.reset(&mut delay),
        Err(Error::UnexpectedResponse {
            expected: 0xFF24,
            got: 0x0011
        })
    );
    adc.release().done();
    delay.done();
}

#[test]
fn read_id_sends_rreg_of_register_0() {
    let spi = expect(vec![
        frame(
            vec![
                0xA0, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            junk(),
        ),
        frame(tx(&[command::NULL]), rx(0x2412, [0; 4])),
    ]);
    let mut adc = Ads131m04::new(spi);
    assert_eq!(adc.read_id().unwrap(), 0x2412);
    adc.release().done();
}

#[test]
fn read_id_rejects_other_channel_counts() {
    let spi = expect(vec![
        frame(tx(&[0xA000]), junk()),
        frame(tx(&[command::NULL]), rx(0x2800, [0; 4])),
    ]);
    let mut adc = Ads131m04::new(spi);
    assert_eq!(adc.read_id(), Err(Error::BadId(0x2800)));
    adc.release().done();
}

#[test]
fn wreg_of_clock_sends_command_and_data_words() {
    let spi = expect(vec![
        frame(
            vec![
                0x61, 0x80, 0x00, 0x0F, 0x0E, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            junk(),
        ),
        frame(tx(&[command::NULL]), rx(0x4180, [0; 4])),
    ]);
    let mut adc = Ads131m04::new(spi);
    adc.write_register(reg::CLOCK, 0x0F0E).unwrap();
    adc.release().done();
}

#[test]
fn wreg_without_ack_is_an_error() {
    let spi = expect(vec![
        frame(tx(&[0x6180, 0x0F0E]), junk()),
        frame(tx(&[command::NULL]), rx(0x0500, [0; 4])),
    ]);
    let mut adc = Ads131m04::new(spi);
    assert_eq!(
        adc.write_register(reg::CLOCK, 0x0F0E),
        Err(Error::UnexpectedResponse {
            expected: 0x4180,
            got: 0x0500
        })
    );
    adc.release().done();
}

#[test]
fn configure_writes_mode_clock_and_gain() {
    let config = Config {
        osr: Osr::Osr512,
        power: PowerMode::HighResolution,
        gains: [Gain::X1, Gain::X2, Gain::X4, Gain::X8],
        enabled: [true, true, true, false],
        input_crc: false,
    };
    let spi = expect(vec![
        // MODE (0x02): 24-bit words, SPI timeout, reset flag cleared.
        frame(tx(&[0x6100, 0x0110]), junk()),
        frame(tx(&[0]), rx(0x4100, [0; 4])),
        // CLOCK (0x03): CH0..CH2 enabled, OSR 512 (010b), high resolution (10b).
        frame(tx(&[0x6180, 0x070A]), junk()),
        frame(tx(&[0]), rx(0x4180, [0; 4])),
        // GAIN1 (0x04): 8, 4, 2, 1 from channel 3 down to 0.
        frame(tx(&[0x6200, 0x3210]), junk()),
        frame(tx(&[0]), rx(0x4200, [0; 4])),
    ]);
    let mut adc = Ads131m04::new(spi);
    adc.configure(&config).unwrap();
    adc.release().done();
}

#[test]
fn configure_with_input_crc_appends_the_crc_word() {
    let config = Config {
        input_crc: true,
        ..Config::default()
    };
    let spi = expect(vec![
        // MODE is written while the device does not check CRCs yet...
        frame(tx(&[0x6100, 0x1110]), junk()),
        // ...and from the next frame on every host frame carries one.
        frame(tx_crc(&[0]), rx(0x4100, [0; 4])),
        frame(tx_crc(&[0x6180, 0x0F0E]), junk()),
        frame(tx_crc(&[0]), rx(0x4180, [0; 4])),
        frame(tx_crc(&[0x6200, 0x0000]), junk()),
        frame(tx_crc(&[0]), rx(0x4200, [0; 4])),
        frame(tx_crc(&[0]), rx(0x0500, [1, 2, 3, 4])),
    ]);
    // The CRC of a NULL command word (00 00 00) per the datasheet's CCITT definition.
    assert_eq!(&tx_crc(&[0])[3..5], &crc16(&[0, 0, 0]).to_be_bytes());
    let mut adc = Ads131m04::new(spi);
    adc.configure(&config).unwrap();
    assert_eq!(adc.read_frame().unwrap().ch, [1, 2, 3, 4]);
    adc.release().done();
}

#[test]
fn read_frame_decodes_positive_and_negative_codes() {
    let spi = expect(vec![frame(
        tx(&[command::NULL]),
        rx(0x050F, [0x7F_FFFF, 0x80_0000, 0xFF_FFFF, 0x12_3456]),
    )]);
    let mut adc = Ads131m04::new(spi);
    let s = adc.read_frame().unwrap();
    assert_eq!(
        s,
        Sample4 {
            status: 0x050F,
            ch: [8_388_607, -8_388_608, -1, 0x12_3456],
        }
    );
    assert_eq!(s.status & status::DRDY_MASK, 0xF);
    assert_eq!(s.status & status::RESET, status::RESET);
    adc.release().done();
}

#[test]
fn read_frame_decodes_a_sine_like_sequence() {
    let codes: [i32; 4] = [-1_234_567, 2_000_000, -3, 0];
    let raw = codes.map(|c| (c as u32) & 0xFF_FFFF);
    let spi = expect(vec![frame(tx(&[0]), rx(0x0500, raw))]);
    let mut adc = Ads131m04::new(spi);
    assert_eq!(adc.read_frame().unwrap().ch, codes);
    adc.release().done();
}

#[test]
fn read_frame_rejects_a_bad_output_crc() {
    let mut bad = rx(0x0500, [1, 2, 3, 4]);
    let good_crc = u16::from_be_bytes([bad[15], bad[16]]);
    bad[7] ^= 0x10; // a bit flips on MISO
    let spi = expect(vec![frame(tx(&[0]), bad.clone())]);
    let mut adc = Ads131m04::new(spi);
    assert_eq!(
        adc.read_frame(),
        Err(Error::CrcMismatch {
            expected: crc16(&bad[..15]),
            got: good_crc
        })
    );
    adc.release().done();
}

#[test]
fn simple_commands_expect_their_echo() {
    let spi = expect(vec![
        frame(tx(&[0x0022]), junk()),
        frame(tx(&[0]), rx(0x0022, [0; 4])),
        frame(tx(&[0x0033]), junk()),
        frame(tx(&[0]), rx(0x0033, [0; 4])),
        frame(tx(&[0x0555]), junk()),
        frame(tx(&[0]), rx(0x0555, [0; 4])),
        frame(tx(&[0x0655]), junk()),
        frame(tx(&[0]), rx(0x0655, [0; 4])),
    ]);
    let mut adc = Ads131m04::new(spi);
    adc.standby().unwrap();
    adc.wakeup().unwrap();
    adc.lock().unwrap();
    adc.unlock().unwrap();
    adc.release().done();
}

/// An SPI device whose bus always fails.
struct BrokenSpi;

#[derive(Debug, PartialEq)]
struct BusFault;

impl embedded_hal::spi::Error for BusFault {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl ErrorType for BrokenSpi {
    type Error = BusFault;
}

impl SpiDevice for BrokenSpi {
    fn transaction(&mut self, _: &mut [Operation<'_, u8>]) -> Result<(), BusFault> {
        Err(BusFault)
    }
}

#[test]
fn spi_errors_are_passed_through() {
    let mut adc = Ads131m04::new(BrokenSpi);
    assert_eq!(adc.read_frame(), Err(Error::Spi(BusFault)));
    assert_eq!(adc.read_id(), Err(Error::Spi(BusFault)));
    let e = adc.read_frame().unwrap_err();
    assert_eq!(e.to_string(), "ADS131M04: SPI error: BusFault");
    assert_eq!(
        Error::<BusFault>::CrcMismatch {
            expected: 0x1234,
            got: 0xABCD
        }
        .to_string(),
        "ADS131M04: output CRC mismatch (computed 0x1234, received 0xabcd)"
    );
}
