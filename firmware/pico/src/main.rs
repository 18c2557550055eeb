//! kare sensor node on a Raspberry Pi Pico (RP2040).
//!
//! An ADS131M04 samples the three phase voltages; `kare_firmware`'s node loop turns every sample
//! into Urms(1/2) values, events and waveform captures, and sends them as pqlink frames on UART0
//! to the edge computer. Wiring, clocks and scaling are in README.md; the constants below are the
//! single source of those numbers.
//!
//! The loop: feed the watchdog, wait for DRDY (sending queued bytes meanwhile), read one sample,
//! run the node. Nothing in it blocks on the UART (see [`port`]).
#![no_std]
#![no_main]
#![deny(missing_docs)]

mod port;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use embedded_hal_bus::spi::ExclusiveDevice;
use kare_firmware::ads131m04::{self, Ads131m04, Config, Gain, Osr, PowerMode};
use kare_firmware::detector::Thresholds;
use kare_firmware::node::{Node, NodeConfig, SampleSource};
use kare_firmware::pqlink::{ChannelInfo, FirmwareVersion, MAX_CHANNELS, UART_BAUD};
use panic_halt as _;
use rp2040_hal::clocks::{Clock, ClockSource, ClocksManager};
use rp2040_hal::fugit::{ExtU32, HertzU32, RateExtU32};
use rp2040_hal::gpio::{FunctionClock, FunctionSpi, FunctionUart, PinState, Pins};
use rp2040_hal::pll::{common_configs::PLL_SYS_125MHZ, setup_pll_blocking, PLLConfig};
use rp2040_hal::uart::{DataBits, StopBits, UartConfig, UartPeripheral};
use rp2040_hal::xosc::setup_xosc_blocking;
use rp2040_hal::{pac, Sio, Spi, Timer, Watchdog};

use crate::port::UartPort;

/// Second-stage bootloader for the Pico's W25Q16 flash; the boot ROM runs it from the first 256
/// bytes of flash (see memory.x) to switch the flash to fast quad-SPI XIP.
#[link_section = ".boot2"]
#[used]
pub static BOOT2_FIRMWARE: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

/// The crystal on the Pico board.
pub const XTAL_HZ: u32 = 12_000_000;

/// PLL_USB, which this firmware does not need for USB, is the ADC's clock source:
/// 12 MHz × 128 = 1536 MHz VCO, ÷ 5 ÷ 4 = 76.8 MHz. Exactly 8.192 MHz cannot be made from a
/// 12 MHz crystal with integer dividers, and a fractional divider would add jitter to CLKIN;
/// 76.8 MHz ÷ 10 gives a clean 7.68 MHz and a whole-number sample rate.
pub const PLL_ADC: PLLConfig = PLLConfig {
    vco_freq: HertzU32::MHz(1536),
    refdiv: 1,
    post_div1: 5,
    post_div2: 4,
};

/// ADS131M04 CLKIN, output on GP21 (GPOUT0): PLL_USB ÷ 10 = 7.68 MHz (the datasheet's nominal is
/// 8.192 MHz; a lower clock only lowers the data rate).
pub const CLKIN_HZ: u32 = 7_680_000;

/// Oversampling ratio: 1024, the ADC's reset default, so an ADC that resets on its own keeps the
/// same data rate.
pub const OSR: Osr = Osr::Osr1024;

/// Samples per second per channel: 7.68 MHz / 2 / 1024 = 3750 (75 per cycle at 50 Hz, 62.5 at
/// 60 Hz; the meter needs at least 8).
pub const SAMPLE_RATE_HZ: u32 = (OSR.data_rate_mhz(CLKIN_HZ) / 1000) as u32;
const _: () = assert!(
    OSR.data_rate_mhz(CLKIN_HZ).is_multiple_of(1000),
    "the sample rate must be a whole number of hertz"
);

/// SPI0 clock: 125 MHz / 16 = 7.8125 MHz (the ADS131M04 allows 25 MHz; a slower clock forgives
/// longer wires). An 18-byte frame takes 18 µs.
pub const SPI_HZ: u32 = 8_000_000;

/// PGA gain of the voltage channels.
pub const GAIN: Gain = Gain::X1;

/// Mains volts per volt at the ADC input: the front end is a resistive divider of 800 kΩ
/// (4 × 200 kΩ in series, for the voltage rating) over 1 kΩ, so (800 k + 1 k) / 1 k = 801.
/// 230 V RMS is then 0.41 V peak at the ADC, a third of the ±1.2 V full scale: room for swells
/// and transients up to 960 V peak. The ADC's 330 kΩ input impedance (gain 1..4) loads the
/// 1 kΩ leg by 0.3 %; calibrate the whole chain against a reference meter.
pub const DIVIDER_RATIO: f32 = 801.0;

/// Declared voltage (phase to neutral) used by the node to trigger waveform captures. The edge
/// service judges events with its own configuration; this only decides what to record.
pub const UDIN_VOLTS: f32 = 220.0;

/// Nominal frequency of the supply.
pub const NOMINAL_HZ: u8 = 50;

/// Channel names in ADC channel order (AIN0..AIN2); AIN3 is converted but not reported.
pub const CHANNEL_NAMES: [&str; 3] = ["VA", "VB", "VC"];

/// The node's identity in `Hello`: `KARE_NODE_ID` at build time (decimal or 0x-hex), else 1.
/// Give every node on a site its own (`KARE_NODE_ID=7 scripts/build-pico`).
pub const NODE_ID: u32 = match option_env!("KARE_NODE_ID") {
    Some(id) => parse_u32(id),
    None => 1,
};

/// Samples of waveform kept before an event's trigger: 100 ms.
pub const CAPTURE_PRE: usize = SAMPLE_RATE_HZ as usize / 10;

/// Samples in a whole capture: 500 ms (100 ms before the trigger, 400 ms after). RAM:
/// (375 + 1875) instants × 16 bytes = 36 KB of the 256 KB. On the link a capture of three
/// channels is about 26 KB, sent in spare time in roughly four seconds.
pub const CAPTURE_TOTAL: usize = SAMPLE_RATE_HZ as usize / 2;

/// Give up waiting for DRDY after two sample periods: a silent ADC then still yields one (failed)
/// sample per timeout, so heartbeats keep flowing and report `ADC_FAULT`.
pub const DRDY_TIMEOUT_US: u32 = 2 * 1_000_000 / SAMPLE_RATE_HZ;

/// Watchdog period. One loop pass takes well under a millisecond; the longest step is ADC start-up
/// (a few milliseconds per attempt), which feeds it too.
pub const WATCHDOG_US: u32 = 250_000;

/// ADC start-up attempts before running without it (and reporting `ADC_FAULT`).
pub const ADC_START_TRIES: u32 = 5;

/// The node's firmware version: this package's version.
const FIRMWARE: FirmwareVersion = FirmwareVersion {
    major: parse_u8(env!("CARGO_PKG_VERSION_MAJOR")),
    minor: parse_u8(env!("CARGO_PKG_VERSION_MINOR")),
    patch: parse_u8(env!("CARGO_PKG_VERSION_PATCH")),
};

/// ADC settings: the reset defaults (OSR 1024, high-resolution, gain 1, all channels on, no input
/// CRC). Writing them anyway clears the reset flag and checks that the ADC listens.
const ADC_CONFIG: Config = Config {
    osr: OSR,
    power: PowerMode::HighResolution,
    gains: [GAIN; ads131m04::CHANNELS],
    enabled: [true; ads131m04::CHANNELS],
    input_crc: false,
};

#[rp2040_hal::entry]
fn main() -> ! {
    let Some(mut pac) = pac::Peripherals::take() else {
        reboot()
    };
    let mut watchdog = Watchdog::new(pac.WATCHDOG);
    let Some(clocks) = init_clocks(
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    ) else {
        reboot()
    };
    // From here on a hang or a panic (panic-halt) ends in a watchdog reboot.
    watchdog.start(WATCHDOG_US.micros());

    let sio = Sio::new(pac.SIO);
    let pins = Pins::new(
        pac.IO_BANK0,
        pac.PADS_BANK0,
        sio.gpio_bank0,
        &mut pac.RESETS,
    );
    let mut timer = Timer::new(pac.TIMER, &mut pac.RESETS, &clocks);

    // ADC clock out. The ADC is held in reset (SYNC/RESET low) until it has run a while.
    let _clkin = pins.gpio21.into_function::<FunctionClock>();
    let mut sync_reset = pins.gpio7.into_push_pull_output_in_state(PinState::Low);
    // DRDY is a push-pull output of the ADC; the pull-up keeps an absent ADC reading "not ready",
    // so it shows up as DRDY timeouts rather than as made-up samples.
    let mut drdy = pins.gpio6.into_pull_up_input();

    let sck = pins.gpio2.into_function::<FunctionSpi>();
    let mosi = pins.gpio3.into_function::<FunctionSpi>();
    let miso = pins.gpio4.into_function::<FunctionSpi>();
    let cs = pins.gpio5.into_push_pull_output_in_state(PinState::High);
    let bus = Spi::<_, _, _, 8>::new(pac.SPI0, (mosi, miso, sck)).init(
        &mut pac.RESETS,
        clocks.peripheral_clock.freq(),
        SPI_HZ.Hz(),
        ads131m04::SPI_MODE,
    );
    let spi = match ExclusiveDevice::new_no_delay(bus, cs) {
        Ok(spi) => spi,
        Err(never) => match never {},
    };
    let mut adc = Ads131m04::new(spi);

    let uart_pins = (
        pins.gpio0.into_function::<FunctionUart>(),
        pins.gpio1.into_function::<FunctionUart>(),
    );
    let Ok(uart) = UartPeripheral::new(pac.UART0, uart_pins, &mut pac.RESETS).enable(
        UartConfig::new(UART_BAUD.Hz(), DataBits::Eight, None, StopBits::One),
        clocks.peripheral_clock.freq(),
    ) else {
        reboot()
    };
    let mut port = UartPort::new(uart);

    // Without the ADC the node still runs: its heartbeats then say ADC_FAULT, which is how the
    // edge service learns about it.
    let _adc_started = start_adc(&mut adc, &mut sync_reset, &mut timer, &watchdog);

    let Ok(node) = Node::<CAPTURE_PRE, CAPTURE_TOTAL>::new(node_config()) else {
        // The configuration is made of the constants above: only a bad edit gets here.
        reboot()
    };
    // Keep the 36 KB node in .bss rather than on the stack.
    let Some(node) = cortex_m::singleton!(: Node<CAPTURE_PRE, CAPTURE_TOTAL> = node) else {
        reboot()
    };

    loop {
        watchdog.feed();
        let start = timer.get_counter_low();
        let ready = loop {
            port.drain();
            if drdy.is_low() == Ok(true) {
                break true;
            }
            if timer.get_counter_low().wrapping_sub(start) > DRDY_TIMEOUT_US {
                break false;
            }
        };
        if ready {
            node.run_once(&mut adc, &mut port);
        } else {
            node.run_once(&mut NoSample, &mut port);
        }
    }
}

/// Clocks: XOSC 12 MHz; clk_sys and clk_peri 125 MHz from PLL_SYS; clk_ref 12 MHz (the timer and
/// watchdog tick at 1 µs from it); GPOUT0 = [`CLKIN_HZ`] from PLL_USB. USB, ADC and RTC clocks
/// stay off: nothing here uses them.
fn init_clocks(
    xosc: pac::XOSC,
    clocks: pac::CLOCKS,
    pll_sys: pac::PLL_SYS,
    pll_usb: pac::PLL_USB,
    resets: &mut pac::RESETS,
    watchdog: &mut Watchdog,
) -> Option<ClocksManager> {
    let xosc = setup_xosc_blocking(xosc, XTAL_HZ.Hz()).ok()?;
    watchdog.enable_tick_generation((XTAL_HZ / 1_000_000) as u8);
    let mut clocks = ClocksManager::new(clocks);
    let pll_sys = setup_pll_blocking(
        pll_sys,
        xosc.operating_frequency(),
        PLL_SYS_125MHZ,
        &mut clocks,
        resets,
    )
    .ok()?;
    let pll_adc = setup_pll_blocking(
        pll_usb,
        xosc.operating_frequency(),
        PLL_ADC,
        &mut clocks,
        resets,
    )
    .ok()?;
    clocks
        .reference_clock
        .configure_clock(&xosc, xosc.get_freq())
        .ok()?;
    clocks
        .system_clock
        .configure_clock(&pll_sys, pll_sys.get_freq())
        .ok()?;
    let sys = clocks.system_clock.freq();
    clocks
        .peripheral_clock
        .configure_clock(&clocks.system_clock, sys)
        .ok()?;
    clocks
        .gpio_output0_clock
        .configure_clock(&pll_adc, CLKIN_HZ.Hz())
        .ok()?;
    // The divider must be whole (no fractional jitter) and the result exact.
    if clocks.gpio_output0_clock.freq() != CLKIN_HZ.Hz::<1, 1>() {
        return None;
    }
    Some(clocks)
}

/// Hardware reset (SYNC/RESET low for 1 ms, more than the 2048 CLKIN periods the datasheet asks),
/// then the driver's software reset, ID check and configuration; retried a few times. Returns
/// whether the ADC answered.
fn start_adc<SPI: SpiDevice, RST: OutputPin, D: DelayNs>(
    adc: &mut Ads131m04<SPI>,
    sync_reset: &mut RST,
    delay: &mut D,
    watchdog: &Watchdog,
) -> bool {
    for _ in 0..ADC_START_TRIES {
        watchdog.feed();
        // GPIO writes on the RP2040 cannot fail (Infallible).
        let _ = sync_reset.set_low();
        delay.delay_ms(1);
        let _ = sync_reset.set_high();
        // The ADC starts its registers from defaults; give it time before the first frame.
        delay.delay_ms(1);
        let started = adc
            .reset(delay)
            .and_then(|()| adc.read_id())
            .and_then(|_| adc.configure(&ADC_CONFIG));
        if started.is_ok() {
            return true;
        }
        delay.delay_ms(10);
    }
    false
}

/// The node's configuration from the constants above.
fn node_config() -> NodeConfig {
    let volts_per_unit = GAIN.volts_per_code() * DIVIDER_RATIO;
    let mut channels = heapless::Vec::new();
    for name in CHANNEL_NAMES {
        let info = ChannelInfo {
            name: heapless::String::try_from(name).unwrap_or_default(),
            volts_per_unit,
        };
        // CHANNEL_NAMES has fewer than MAX_CHANNELS entries (checked below).
        let _ = channels.push(info);
    }
    NodeConfig {
        node_id: NODE_ID,
        firmware: FIRMWARE,
        channels,
        nominal_hz: NOMINAL_HZ,
        sample_rate_hz: SAMPLE_RATE_HZ,
        thresholds: Thresholds::typical(UDIN_VOLTS),
    }
}
const _: () = assert!(CHANNEL_NAMES.len() <= MAX_CHANNELS);

/// The sample source for a DRDY timeout: always fails, so the node counts an ADC error, holds the
/// previous sample and reports `ADC_FAULT` in its next heartbeat.
struct NoSample;

impl SampleSource for NoSample {
    type Error = ();
    fn next_sample(&mut self, _out: &mut [i32; MAX_CHANNELS]) -> Result<(), ()> {
        Err(())
    }
}

/// Restart the chip: for failures during start-up, before anything could be reported.
fn reboot() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}

/// Parses a decimal or `0x` hexadecimal `u32` at compile time (a bad `KARE_NODE_ID` fails the
/// build).
const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let (radix, mut i) = if b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') {
        (16, 2)
    } else {
        (10, 0)
    };
    assert!(i < b.len(), "empty number");
    let mut value: u32 = 0;
    while i < b.len() {
        let digit = match b[i] {
            c @ b'0'..=b'9' => (c - b'0') as u32,
            c @ b'a'..=b'f' if radix == 16 => (c - b'a' + 10) as u32,
            c @ b'A'..=b'F' if radix == 16 => (c - b'A' + 10) as u32,
            _ => panic!("not a number"),
        };
        value = match value.checked_mul(radix) {
            Some(v) => match v.checked_add(digit) {
                Some(v) => v,
                None => panic!("number too large"),
            },
            None => panic!("number too large"),
        };
        i += 1;
    }
    value
}

/// [`parse_u32`] for a version component.
const fn parse_u8(s: &str) -> u8 {
    let v = parse_u32(s);
    assert!(v <= u8::MAX as u32, "version component above 255");
    v as u8
}
