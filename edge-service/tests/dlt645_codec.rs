//! DL/T 645-2007 codec: frames written out by hand from the standard's frame layout (with the
//! checksum computed in a comment), malformed frames, BCD values, the identifier table, load
//! profiles, and a deterministic fuzz run that must never panic.
//!
//! Meter `123456789012` is `12 90 78 56 34 12` on the wire (A0 first). The header
//! `68 12 90 78 56 34 12 68` sums to 0x286; every checksum below starts from that.

// Test names carry the protocol (`cargo test -p kare dlt645` runs them all).
mod dlt645 {
    use chrono::{NaiveDate, NaiveDateTime};
    use kare::sources::meters::dlt645::codec::{
        self as dlt645, bcd, broadcast_time, decode_address_reply, decode_follow_up_reply,
        decode_read_reply, parse_load_records, read_address, read_data, read_follow_up, scan,
        Address, Control, Di, Error, ErrorFlags, Frame, FrameBuffer, IdentifierTable,
        LoadProfileRead, NumberFormat, Record, Scan, Value,
    };
    use kare::sources::meters::readings::Quantity;

    fn meter() -> Address {
        "123456789012".parse().unwrap()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    const VOLTAGE_A: Di = Di(0x0201_0100);

    // Read 02 01 01 00 from 123456789012. DI0 first, each + 33: 00 01 01 02 -> 33 34 34 35.
    // CS = 0x286 + 11 + 04 + 33 + 34 + 34 + 35 = 0x36B -> 6B.
    const READ_VOLTAGE_A: [u8; 16] = [
        0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0x11, 0x04, 0x33, 0x34, 0x34, 0x35, 0x6B,
        0x16,
    ];

    // Its reply, 220.1 V: XXX.X -> digits 2201, lowest byte first 01 22, + 33 -> 34 55.
    // CS = 0x286 + 91 + 06 + 33 + 34 + 34 + 35 + 34 + 55 = 0x476 -> 76. With the wake-up bytes the
    // meter sends first.
    const VOLTAGE_A_REPLY: [u8; 22] = [
        0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0x91, 0x06, 0x33,
        0x34, 0x34, 0x35, 0x34, 0x55, 0x76, 0x16,
    ];

    #[test]
    fn address_parses_from_the_nameplate_and_travels_lowest_first() {
        let a = meter();
        assert_eq!(a.wire(), [0x12, 0x90, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(a.to_string(), "123456789012");
        assert!("12345678901".parse::<Address>().is_err());
        assert!("12345678901A".parse::<Address>().is_err());
        assert_eq!(Address::WILDCARD.to_string(), "AAAAAAAAAAAA");
    }

    #[test]
    fn read_request_matches_the_hand_built_frame() {
        let frame = read_data(meter(), VOLTAGE_A);
        assert_eq!(frame.encode().unwrap(), READ_VOLTAGE_A);
        let mut woken = vec![0xFE; 4];
        woken.extend(READ_VOLTAGE_A);
        assert_eq!(frame.encode_with_wake_up().unwrap(), woken);
        assert_eq!(Frame::decode(&READ_VOLTAGE_A).unwrap(), frame);
    }

    #[test]
    fn voltage_reply_decodes_to_220_1_volts() {
        let frame = Frame::decode(&VOLTAGE_A_REPLY).unwrap();
        assert_eq!(frame.control, Control(0x91));
        assert!(frame.control.is_reply() && !frame.control.is_abnormal());
        assert!(!frame.control.has_follow_up());
        assert_eq!(frame.control.function(), 0x11);
        let reply = decode_read_reply(&frame, meter(), VOLTAGE_A).unwrap();
        assert_eq!(reply.value, [0x01, 0x22]);
        assert!(!reply.more);
        let id = IdentifierTable::builtin().require(VOLTAGE_A).unwrap();
        let values = id.decode(&reply.value).unwrap();
        assert_eq!(values, [Value::Number(220.1)]);
        assert_eq!(id.reading(&values), Some((Quantity::VoltageA, 220.1)));
    }

    #[test]
    fn published_capture_of_a_real_meter_decodes() {
        // A capture published with a DL/T 645-2007 tutorial, meter 000000000161:
        // request FE FE FE FE 68 61 01 00 00 00 00 68 11 04 33 33 34 33 14 16 (00010000),
        // reply 68 61 01 00 00 00 00 68 91 08 33 33 34 33 59 33 33 33 8A 16 = 000000.26 kWh,
        // reply 68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16 = 100.1 V.
        let m: Address = "000000000161".parse().unwrap();
        let energy = Di(0x0001_0000);
        assert_eq!(
            read_data(m, energy).encode_with_wake_up().unwrap(),
            [
                0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x61, 0x01, 0x00, 0x00, 0x00, 0x00, 0x68, 0x11, 0x04,
                0x33, 0x33, 0x34, 0x33, 0x14, 0x16
            ]
        );
        let table = IdentifierTable::builtin();
        let reply = Frame::decode(&[
            0x68, 0x61, 0x01, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33,
            0x59, 0x33, 0x33, 0x33, 0x8A, 0x16,
        ])
        .unwrap();
        let value = decode_read_reply(&reply, m, energy).unwrap().value;
        assert_eq!(
            table.require(energy).unwrap().decode(&value).unwrap(),
            [Value::Number(0.26)]
        );
        let reply = Frame::decode(&[
            0x68, 0x61, 0x01, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x06, 0x33, 0x34, 0x34, 0x35,
            0x34, 0x43, 0x10, 0x16,
        ])
        .unwrap();
        let value = decode_read_reply(&reply, m, VOLTAGE_A).unwrap().value;
        assert_eq!(
            table.require(VOLTAGE_A).unwrap().decode(&value).unwrap(),
            [Value::Number(100.1)]
        );
    }

    #[test]
    fn error_reply_d1_is_a_typed_refusal() {
        // D1 with error byte 02 (no data requested), + 33 -> 35.
        // CS = 0x286 + D1 + 01 + 35 = 0x38D -> 8D.
        let frame = Frame::decode(&[
            0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0xD1, 0x01, 0x35, 0x8D, 0x16,
        ])
        .unwrap();
        assert!(frame.control.is_reply() && frame.control.is_abnormal());
        let err = decode_read_reply(&frame, meter(), VOLTAGE_A).unwrap_err();
        assert_eq!(err, Error::ErrorReply(ErrorFlags(0x02)));
        let text = err.to_string();
        assert!(text.contains("no data requested"), "{text}");

        let all = ErrorFlags(0x7F);
        assert_eq!(
            all.reasons(),
            [
                "other error",
                "no data requested (the meter does not have this identifier)",
                "password error or not authorised",
                "communication rate cannot be changed",
                "number of year time zones exceeded",
                "number of day periods exceeded",
                "number of tariffs exceeded",
            ]
        );
        assert!(ErrorFlags(0).to_string().contains("no reason given"));
    }

    // A load-profile record with only class 1 (voltage, current, frequency), time 2025-01-02 03:15:
    //   A0 A0 1C | 15 03 02 01 25 | 01 22 10 22 99 21 34 12 00 00 20 00 00 05 80 02 50 | AA x6 | E4 E5
    //   Ua 220.1, Ub 221.0, Uc 219.9, Ia 1.234, Ib 2.000, Ic -0.500 (sign bit 80), f 50.02.
    //   len 1C = 5 + 17 + 6; record checksum: the 31 bytes from A0 through the last AA sum to 0x7E4.
    const RECORD: [u8; 33] = [
        0xA0, 0xA0, 0x1C, 0x15, 0x03, 0x02, 0x01, 0x25, 0x01, 0x22, 0x10, 0x22, 0x99, 0x21, 0x34,
        0x12, 0x00, 0x00, 0x20, 0x00, 0x00, 0x05, 0x80, 0x02, 0x50, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,
        0xAA, 0xE4, 0xE5,
    ];

    #[test]
    fn multi_frame_b1_reply_and_follow_up_read() {
        let di = Di(0x0600_0002);
        // Request: latest 1 block. DI 02 00 00 06 + 33 -> 35 33 33 39, NN 01 -> 34.
        // CS = 0x286 + 11 + 05 + 35 + 33 + 33 + 39 + 34 = 0x3A4 -> A4.
        assert_eq!(
            LoadProfileRead::Latest { blocks: 1 }
                .request(meter())
                .unwrap()
                .encode()
                .unwrap(),
            [
                0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0x11, 0x05, 0x35, 0x33, 0x33, 0x39,
                0x34, 0xA4, 0x16
            ]
        );
        // B1: normal reply with follow-up frames, DI then the record's first 13 bytes (+ 33).
        // L = 4 + 13 = 11; CS = 0x93D -> 3D.
        let b1 = Frame::decode(&[
            0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0xB1, 0x11, 0x35, 0x33, 0x33, 0x39,
            0xD3, 0xD3, 0x4F, 0x48, 0x36, 0x35, 0x34, 0x58, 0x34, 0x55, 0x43, 0x55, 0xCC, 0x3D,
            0x16,
        ])
        .unwrap();
        assert!(b1.control.has_follow_up());
        let first = decode_read_reply(&b1, meter(), di).unwrap();
        assert!(first.more);
        assert_eq!(first.value, RECORD[..13]);
        // Follow-up read 12, frame 1: DI + SEQ 01 (-> 34). CS = 0x286 + 12 + 05 + 35 + 33 + 33 + 39
        // + 34 = 0x3A5 -> A5.
        assert_eq!(
            read_follow_up(meter(), di, 1).encode().unwrap(),
            [
                0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0x12, 0x05, 0x35, 0x33, 0x33, 0x39,
                0x34, 0xA5, 0x16
            ]
        );
        // 92: last frame, DI + the other 20 record bytes + SEQ 01. L = 4 + 20 + 1 = 19; CS 0xD58.
        let f92 = Frame::decode(&[
            0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0x92, 0x19, 0x35, 0x33, 0x33, 0x39,
            0x54, 0x67, 0x45, 0x33, 0x33, 0x53, 0x33, 0x33, 0x38, 0xB3, 0x35, 0x83, 0xDD, 0xDD,
            0xDD, 0xDD, 0xDD, 0xDD, 0x17, 0x18, 0x34, 0x58, 0x16,
        ])
        .unwrap();
        let second = decode_follow_up_reply(&f92, meter(), di, 1).unwrap();
        assert!(!second.more);
        assert_eq!(second.seq, Some(1));
        assert_eq!(
            decode_follow_up_reply(&f92, meter(), di, 2).unwrap_err(),
            Error::SequenceMismatch {
                expected: 2,
                got: 1
            }
        );
        let mut value = first.value;
        value.extend(second.value);
        assert_eq!(value, RECORD);
        let records = parse_load_records(&value).unwrap();
        assert_eq!(records.flagged_bad, 0);
        assert_eq!(records.records.len(), 1);
        let r = &records.records[0];
        assert_eq!(r.time, at(2025, 1, 2, 3, 15, 0));
        assert_eq!(
            r.values,
            [
                (Quantity::VoltageA, 220.1),
                (Quantity::VoltageB, 221.0),
                (Quantity::VoltageC, 219.9),
                (Quantity::CurrentA, 1.234),
                (Quantity::CurrentB, 2.0),
                (Quantity::CurrentC, -0.5),
                (Quantity::Frequency, 50.02),
            ]
        );
    }

    #[test]
    fn read_address_13_and_its_93_reply() {
        // 68 AA AA AA AA AA AA 68 13 00: CS = 68 + 6 x AA + 68 + 13 = 0x4DF -> DF.
        assert_eq!(
            read_address().encode().unwrap(),
            [0x68, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0x68, 0x13, 0x00, 0xDF, 0x16]
        );
        // 93 with the address as data, + 33: 45 C3 AB 89 67 45. CS = 0x607 -> 07.
        let reply = Frame::decode(&[
            0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0x93, 0x06, 0x45, 0xC3, 0xAB, 0x89,
            0x67, 0x45, 0x07, 0x16,
        ])
        .unwrap();
        assert_eq!(decode_address_reply(&reply).unwrap(), meter());
        // A 93 whose data disagrees with its own address field is refused.
        let mut odd = reply.clone();
        odd.data[0] = 0x13;
        assert!(matches!(
            decode_address_reply(&odd),
            Err(Error::AddressMismatch { .. })
        ));
    }

    #[test]
    fn broadcast_time_set_sends_seconds_first() {
        // 2025-01-02 03:04:05 -> ss mm hh DD MM YY = 05 04 03 02 01 25, + 33: 38 37 36 35 34 58.
        // CS = 68 + 6 x 99 + 68 + 08 + 06 + 38 + 37 + 36 + 35 + 34 + 58 = 0x5DA -> DA.
        let frame = broadcast_time(at(2025, 1, 2, 3, 4, 5)).unwrap();
        assert_eq!(
            frame.encode().unwrap(),
            [
                0x68, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x68, 0x08, 0x06, 0x38, 0x37, 0x36, 0x35,
                0x34, 0x58, 0xDA, 0x16
            ]
        );
        assert!(broadcast_time(at(2100, 1, 1, 0, 0, 0)).is_err());
    }

    #[test]
    fn malformed_frames_give_typed_errors() {
        let good = READ_VOLTAGE_A;
        // Bad checksum.
        let mut b = good;
        b[14] = 0x6C;
        assert_eq!(
            Frame::decode(&b),
            Err(Error::BadChecksum {
                expected: 0x6B,
                got: 0x6C
            })
        );
        // Missing 16.
        let mut b = good;
        b[15] = 0x17;
        assert_eq!(Frame::decode(&b), Err(Error::BadEndByte { found: 0x17 }));
        // Truncated: the last two bytes never came.
        assert_eq!(
            Frame::decode(&good[..14]),
            Err(Error::Truncated {
                needed: 16,
                got: 14
            })
        );
        assert_eq!(
            Frame::decode(&good[..5]),
            Err(Error::Truncated { needed: 12, got: 5 })
        );
        assert_eq!(
            Frame::decode(&[]),
            Err(Error::Truncated { needed: 12, got: 0 })
        );
        // Wrong length: L says 5 data bytes, 4 are there (the frame still ends in 16).
        let mut b = good;
        b[9] = 0x05;
        assert_eq!(
            Frame::decode(&b),
            Err(Error::BadLength {
                declared: 5,
                actual: 4
            })
        );
        // Wrong length the other way: L says 3, and more bytes follow the frame's end.
        let mut b = good;
        b[9] = 0x03;
        assert_eq!(
            Frame::decode(&b),
            Err(Error::BadLength {
                declared: 3,
                actual: 4
            })
        );
        // Garbage before 68 is not a frame (for scan it is skippable garbage, see below).
        let mut g = vec![0x00, 0x13];
        g.extend(good);
        assert_eq!(Frame::decode(&g), Err(Error::BadStart { found: 0x00 }));
        // Second 68 missing.
        let mut b = good;
        b[7] = 0x69;
        assert_eq!(
            Frame::decode(&b),
            Err(Error::BadSecondStart { found: 0x69 })
        );
        // Any number of FE before the frame is fine.
        let mut fe = vec![0xFE; 9];
        fe.extend(good);
        assert_eq!(Frame::decode(&fe).unwrap(), read_data(meter(), VOLTAGE_A));
        // Too long to encode.
        let huge = Frame {
            address: meter(),
            control: Control(0x91),
            data: vec![0; 256],
        };
        assert_eq!(huge.encode(), Err(Error::DataTooLong { len: 256 }));
        // Every message says something useful.
        for e in [
            Error::BadChecksum {
                expected: 1,
                got: 2,
            },
            Error::Truncated { needed: 1, got: 0 },
            Error::BadBcd {
                byte: 0xA1,
                position: 1,
            },
        ] {
            assert!(e.to_string().len() > 40, "{e}");
        }
    }

    #[test]
    fn bad_bcd_nibble_is_reported_with_its_position() {
        let id = IdentifierTable::builtin().require(VOLTAGE_A).unwrap();
        // 2.201 V would be 01 22; a nibble A in the second byte.
        assert_eq!(
            id.decode(&[0x01, 0xA2]),
            Err(Error::BadBcd {
                byte: 0xA2,
                position: 1
            })
        );
        assert_eq!(
            id.decode(&[0x01, 0x22, 0x00]),
            Err(Error::ValueLength {
                di: VOLTAGE_A,
                expected: 2,
                got: 3
            })
        );
        // In the second field of a composite value the position counts from the value's start.
        let demand = IdentifierTable::builtin().require(Di(0x0101_0000)).unwrap();
        let mut v = vec![0x45, 0x23, 0x01]; // 01.2345 kW
        v.extend([0x30, 0x1F, 0x02, 0x01, 0x25]); // hour 1F: not BCD
        assert_eq!(
            demand.decode(&v),
            Err(Error::BadBcd {
                byte: 0x1F,
                position: 4
            })
        );
    }

    #[test]
    fn scan_resynchronises_on_garbage_and_split_reads() {
        // Garbage with a 68 in it, then a whole reply with wake-up bytes.
        let mut stream = vec![0x00, 0x68, 0x12, 0xFF, 0x16];
        stream.extend(VOLTAGE_A_REPLY);
        match scan(&stream) {
            Scan::Frame {
                frame,
                skipped,
                consumed,
            } => {
                assert_eq!(frame.control, Control(0x91));
                assert_eq!(skipped, 9); // 5 garbage + 4 FE
                assert_eq!(consumed, stream.len());
            }
            other => panic!("{other:?}"),
        }
        // Fed one byte at a time, the buffer finds exactly one frame and counts only the garbage.
        let mut fb = FrameBuffer::new();
        let mut frames = Vec::new();
        for b in &stream {
            fb.push(std::slice::from_ref(b));
            while let Some(f) = fb.next_frame() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 1);
        assert!(frames[0].is_ok());
        assert_eq!(fb.discarded(), 5);
        assert!(fb.is_empty());
        // Two replies joined in one read, then half of a third.
        let mut two = VOLTAGE_A_REPLY.to_vec();
        two.extend(VOLTAGE_A_REPLY);
        two.extend(&VOLTAGE_A_REPLY[..10]);
        fb.push(&two);
        assert!(matches!(fb.next_frame(), Some(Ok(_))));
        assert!(matches!(fb.next_frame(), Some(Ok(_))));
        assert!(fb.next_frame().is_none());
        assert_eq!(fb.len(), 6); // the third frame's 68 and address so far wait
        fb.push(&VOLTAGE_A_REPLY[10..]);
        assert!(matches!(fb.next_frame(), Some(Ok(_))));
        // A frame with a bad checksum comes out as an error, then the good one after it.
        let mut bad = READ_VOLTAGE_A.to_vec();
        bad[14] ^= 0x01;
        bad.extend(VOLTAGE_A_REPLY);
        fb.push(&bad);
        assert!(matches!(
            fb.next_frame(),
            Some(Err(Error::BadChecksum { .. }))
        ));
        assert!(matches!(fb.next_frame(), Some(Ok(_))));
        assert!(fb.next_frame().is_none());
        // A noise 68 announcing a long frame does not hold back a whole frame behind it.
        let mut noisy = vec![0x68, 1, 2, 3, 4, 5, 6, 0x68, 0x91, 0xF0];
        noisy.extend(VOLTAGE_A_REPLY);
        assert!(matches!(scan(&noisy), Scan::Frame { skipped: 14, .. }));
        // Only a partial frame: nothing is dropped from its 68 on.
        assert_eq!(scan(&VOLTAGE_A_REPLY[..12]), Scan::Incomplete { drop: 4 });
        assert_eq!(scan(&[0x01, 0x02]), Scan::Incomplete { drop: 2 });
    }

    #[test]
    fn bcd_numbers_and_times() {
        let f: NumberFormat = "XX.XXXX".parse().unwrap();
        assert_eq!(f.bytes(), 3);
        assert_eq!(f.to_string(), "XX.XXXX");
        assert!("XXX".parse::<NumberFormat>().is_err()); // odd digits
        assert!("X.X.X".parse::<NumberFormat>().is_err());
        assert!("XX.".parse::<NumberFormat>().is_err());
        // -12.3456 kW: 12 34 56 -> 56 34 12, sign on the top byte -> 56 34 92.
        assert_eq!(
            bcd::encode_number(-12.3456, f, true).unwrap(),
            [0x56, 0x34, 0x92]
        );
        assert_eq!(
            bcd::decode_number(&[0x56, 0x34, 0x92], f, true).unwrap(),
            -12.3456
        );
        // Unsigned: the same top bit is a digit (92 is BCD).
        assert_eq!(
            bcd::decode_number(&[0x56, 0x34, 0x92], f, false).unwrap(),
            92.3456
        );
        assert!(bcd::encode_number(80.0, f, true).is_err()); // the top digit holds 0-7 when signed
        assert!(bcd::encode_number(-1.0, f, false).is_err());
        assert_eq!(
            bcd::decode_number(&[0x00, 0x80], "X.XXX".parse().unwrap(), true),
            Ok(0.0)
        );
        assert_eq!(
            bcd::decode_number(&[0x01], "X.XXX".parse().unwrap(), true),
            Err(Error::Truncated { needed: 2, got: 1 })
        );
        // Times, lowest unit first; zeros mean "not recorded".
        let t = at(2025, 1, 2, 3, 4, 5);
        let six = bcd::encode_datetime(t, true).unwrap();
        assert_eq!(six, [0x05, 0x04, 0x03, 0x02, 0x01, 0x25]);
        assert_eq!(bcd::decode_datetime(&six), Ok(Some(t)));
        assert_eq!(
            bcd::decode_datetime(&six[1..]),
            Ok(Some(at(2025, 1, 2, 3, 4, 0)))
        );
        assert_eq!(bcd::decode_datetime(&[0; 6]), Ok(None));
        assert!(matches!(
            bcd::decode_datetime(&[0x00, 0x00, 0x00, 0x31, 0x02, 0x25]),
            Err(Error::BadDateTime(_))
        ));
        assert!(matches!(
            bcd::decode_datetime(&[0x00, 0x00]),
            Err(Error::BadDateTime(_))
        ));
    }

    #[test]
    fn builtin_table_is_complete_and_checked() {
        let table = IdentifierTable::builtin();
        for id in table.iter() {
            assert!(!id.checked.is_empty(), "{} has no 'checked' note", id.di);
        }
        let expect = |di: u32, format: &str, bytes: usize, quantity: Option<Quantity>| {
            let id = table.require(Di(di)).unwrap();
            assert_eq!(
                (id.format.as_str(), id.bytes, id.quantity),
                (format, bytes, quantity),
                "{:08X}",
                di
            );
            id.clone()
        };
        expect(0x0201_0100, "XXX.X", 2, Some(Quantity::VoltageA));
        expect(0x0201_0300, "XXX.X", 2, Some(Quantity::VoltageC));
        assert!(matches!(
            expect(0x0202_0100, "XXX.XXX", 3, Some(Quantity::CurrentA)).fields[0],
            dlt645::Field::Number { signed: true, .. }
        ));
        expect(0x0203_0000, "XX.XXXX", 3, Some(Quantity::ActivePowerTotal));
        expect(
            0x0204_0000,
            "XX.XXXX",
            3,
            Some(Quantity::ReactivePowerTotal),
        );
        expect(
            0x0205_0000,
            "XX.XXXX",
            3,
            Some(Quantity::ApparentPowerTotal),
        );
        expect(0x0206_0000, "X.XXX", 2, Some(Quantity::PowerFactorTotal));
        expect(0x0280_0002, "XX.XX", 2, Some(Quantity::Frequency));
        expect(0x0280_0004, "XX.XXXX", 3, Some(Quantity::DemandKw));
        expect(0x0001_0000, "XXXXXX.XX", 4, Some(Quantity::EnergyImportKwh));
        expect(0x0002_0000, "XXXXXX.XX", 4, Some(Quantity::EnergyExportKwh));
        expect(
            0x0101_0000,
            "XX.XXXX,YYMMDDhhmm",
            8,
            Some(Quantity::MaxDemandKw),
        );
        expect(0x0311_0000, "XXXXXX", 3, Some(Quantity::PowerDownCount));
        let pd = expect(0x0311_0001, "YYMMDDhhmmss,YYMMDDhhmmss", 12, None);
        assert_eq!(pd.record, Some(Record::PowerDown));
        let lp = expect(0x0600_0001, "load_record", 0, None);
        assert_eq!(lp.record, Some(Record::LoadProfile));
        // Every identifier of the standard polls is described.
        for p in kare::sources::meters::dlt645::Dlt645Device::standard_polls() {
            table.require(p.di).unwrap();
        }
        assert_eq!(
            table.require(Di(0x0299_0000)),
            Err(Error::UnknownIdentifier(Di(0x0299_0000)))
        );
    }

    #[test]
    fn extra_identifier_file_adds_and_corrects() {
        let extra = r#"
[[identifier]]
di = "02FF0000"
name = "Vendor-specific temperature"
format = "XXX.X"
bytes = 2
signed = true
unit = "°C"

[[identifier]]
di = "02800002"
name = "Grid frequency, vendor with three decimals"
quantity = "frequency"
format = "XX.XXXX"
bytes = 3
unit = "Hz"
"#;
        let table = IdentifierTable::builtin()
            .with_toml(extra, "extra.toml")
            .unwrap();
        assert_eq!(table.len(), IdentifierTable::builtin().len() + 1);
        assert_eq!(table.require(Di(0x0280_0002)).unwrap().bytes, 3);
        let temp = table.require(Di(0x02FF_0000)).unwrap();
        assert_eq!(temp.decode(&[0x05, 0x82]).unwrap(), [Value::Number(-20.5)]);
        assert_eq!(temp.reading(&[Value::Number(1.0)]), None);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extra.toml");
        std::fs::write(&path, extra).unwrap();
        assert_eq!(IdentifierTable::builtin().with_file(&path).unwrap(), table);
        assert!(IdentifierTable::builtin()
            .with_file(&dir.path().join("missing.toml"))
            .is_err());
    }

    #[test]
    fn bad_identifier_files_are_refused_with_the_entry_named() {
        let refuse = |text: &str, needle: &str| {
            let e = IdentifierTable::parse(text, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        };
        let entry = |body: &str| format!("[[identifier]]\ndi = \"02010100\"\nname = \"V\"\n{body}");
        refuse(
            &entry("format = \"XXX.X\"\nbytes = 3\n"),
            "bytes = 3 but format XXX.X takes 2",
        );
        refuse(&entry("format = \"XXX\"\nbytes = 2\n"), "digits");
        refuse(
            &entry("format = \"XXX.X\"\nbytes = 2\nquantity = \"volts\"\n"),
            "volts",
        );
        refuse(
            &entry("format = \"YYMMDDhhmm\"\nbytes = 5\nquantity = \"voltage_a\"\n"),
            "numeric first field",
        );
        refuse(
            &entry("format = \"XXX.X\"\nbytes = 2\nrecord = \"power_down\"\n"),
            "power-down record",
        );
        refuse(
            &entry("format = \"XXX.X\"\nbytes = 2\ncolour = 1\n"),
            "colour",
        );
        refuse(
            "[[identifier]]\ndi = \"0201\"\nname = \"V\"\nformat = \"XXX.X\"\nbytes = 2\n",
            "not a data identifier",
        );
        let twice = format!(
            "{}\n{}",
            entry("format = \"XXX.X\"\nbytes = 2\n"),
            entry("format = \"XXX.X\"\nbytes = 2\n")
        );
        refuse(&twice, "appears twice");
    }

    #[test]
    fn load_profile_records_all_classes_and_flags() {
        use dlt645::bcd::encode_number;
        let n = |v: f64, fmt: &str, signed: bool| {
            encode_number(v, fmt.parse().unwrap(), signed).unwrap()
        };
        // A full record: all six classes.
        let mut body = bcd::encode_datetime(at(2025, 3, 4, 10, 15, 0), false).unwrap();
        for v in [230.1, 230.2, 230.3] {
            body.extend(n(v, "XXX.X", false));
        }
        for v in [10.5, -10.6, 10.7] {
            body.extend(n(v, "XXX.XXX", true));
        }
        body.extend(n(49.98, "XX.XX", false));
        body.push(0xAA);
        for v in [7.0, 2.0, 2.5, 2.5, -1.0, 0.1, 0.2, 0.3] {
            body.extend(n(v, "XX.XXXX", true));
        }
        body.push(0xAA);
        for v in [0.99, 0.98, -0.97, 1.0] {
            body.extend(n(v, "X.XXX", true));
        }
        body.push(0xAA);
        for (v, s) in [
            (123456.78, false),
            (12.5, false),
            (-3.25, true),
            (4.0, true),
        ] {
            body.extend(n(v, "XXXXXX.XX", s));
        }
        body.push(0xAA);
        for v in [1.0, 2.0, 3.0, 4.0] {
            body.extend(n(v, "XXXXXX.XX", false));
        }
        body.push(0xAA);
        body.extend(n(6.5432, "XX.XXXX", true));
        body.extend(n(1.0, "XX.XXXX", true));
        body.push(0xAA);
        assert_eq!(body.len(), 5 + 17 + 24 + 8 + 16 + 16 + 6 + 6);
        let wrap = |start: u8, body: &[u8]| {
            let mut r = vec![start, start, body.len() as u8];
            r.extend(body);
            r.push(r.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
            r.push(0xE5);
            r
        };
        let mut value = wrap(0xA0, &body);
        value.extend(wrap(0xE0, &body)); // flagged by the meter as not correct
        value.extend(RECORD);
        let records = parse_load_records(&value).unwrap();
        assert_eq!(records.flagged_bad, 1);
        assert_eq!(records.records.len(), 2);
        let q = |i: usize, quantity: Quantity| {
            records.records[i]
                .values
                .iter()
                .find(|(qq, _)| *qq == quantity)
                .map(|(_, v)| *v)
        };
        assert_eq!(records.records[0].time, at(2025, 3, 4, 10, 15, 0));
        assert_eq!(q(0, Quantity::VoltageC), Some(230.3));
        assert_eq!(q(0, Quantity::CurrentB), Some(-10.6));
        assert_eq!(q(0, Quantity::Frequency), Some(49.98));
        assert_eq!(q(0, Quantity::ActivePowerTotal), Some(7.0));
        assert_eq!(q(0, Quantity::ReactivePowerTotal), Some(-1.0));
        assert_eq!(q(0, Quantity::PowerFactorB), Some(-0.97));
        assert_eq!(q(0, Quantity::EnergyImportKwh), Some(123456.78));
        assert_eq!(q(0, Quantity::EnergyReactiveImportKvarh), Some(-3.25));
        assert_eq!(q(0, Quantity::DemandKw), Some(6.5432));
        assert_eq!(records.records[0].values.len(), 7 + 5 + 4 + 4 + 1);
        assert_eq!(q(1, Quantity::DemandKw), None); // class 6 not recorded

        // Damaged records are typed errors.
        let mut bad = RECORD;
        bad[31] ^= 1;
        assert!(
            matches!(parse_load_records(&bad), Err(Error::BadLoadRecord(m)) if m.contains("checksum"))
        );
        let mut bad = RECORD;
        bad[32] = 0x16;
        assert!(
            matches!(parse_load_records(&bad), Err(Error::BadLoadRecord(m)) if m.contains("E5"))
        );
        assert!(matches!(
            parse_load_records(&RECORD[..20]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            parse_load_records(&[0x68, 0x68, 0]),
            Err(Error::BadLoadRecord(_))
        ));
        // Given-time request: NN 04 then mm hh DD MM YY.
        let f = LoadProfileRead::Since {
            from: at(2025, 3, 4, 10, 15, 0),
            blocks: 4,
        }
        .request(meter())
        .unwrap();
        assert_eq!(
            f.data,
            [0x01, 0x00, 0x00, 0x06, 0x04, 0x15, 0x10, 0x04, 0x03, 0x25]
        );
        assert!(LoadProfileRead::Latest { blocks: 0 }
            .request(meter())
            .is_err());
        assert!(LoadProfileRead::Latest { blocks: 100 }
            .request(meter())
            .is_err());
    }

    /// xorshift64*: a fixed sequence, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn fuzz_never_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let table = IdentifierTable::builtin();
        let ids: Vec<_> = table.iter().collect();
        let valid: Vec<Vec<u8>> = vec![
            READ_VOLTAGE_A.to_vec(),
            VOLTAGE_A_REPLY.to_vec(),
            read_address().encode().unwrap(),
            broadcast_time(at(2025, 1, 2, 3, 4, 5))
                .unwrap()
                .encode()
                .unwrap(),
            Frame {
                address: meter(),
                control: Control(0x91),
                data: [Di(0x0600_0002).to_wire().to_vec(), RECORD.to_vec()].concat(),
            }
            .encode()
            .unwrap(),
        ];
        let mut fb = FrameBuffer::new();
        for round in 0..20_000 {
            // Random bytes, biased towards the bytes that matter.
            let len = rng.below(300);
            let mut bytes = rng.bytes(len);
            for b in bytes.iter_mut() {
                if rng.below(4) == 0 {
                    *b = [0x68, 0x16, 0xFE, 0xA0, 0xAA, 0xE5][rng.below(6)];
                }
            }
            let _ = Frame::decode(&bytes);
            let _ = scan(&bytes);
            let _ = parse_load_records(&bytes);
            let id = ids[rng.below(ids.len())];
            let _ = id.decode(&bytes);
            let _ = id.decode(&bytes[..bytes.len().min(id.bytes)]);
            let _ = bcd::decode_datetime(&bytes[..bytes.len().min(6)]);
            fb.push(&bytes);
            while fb.next_frame().is_some() {}

            // A valid frame truncated, or with one bit flipped: always an error, never a panic.
            let v = &valid[round % valid.len()];
            let cut = rng.below(v.len());
            assert!(Frame::decode(&v[..cut]).is_err());
            let mut flipped = v.clone();
            let at = rng.below(flipped.len());
            flipped[at] ^= 1 << rng.below(8);
            assert!(
                Frame::decode(&flipped).is_err(),
                "bit flip at {at} of {:02X?} went unnoticed",
                v
            );
            // And the stream finder still finds the valid frame after any garbage.
            let garbage = rng.below(40);
            let mut stream = rng.bytes(garbage);
            stream.extend(v);
            let mut f = FrameBuffer::new();
            f.push(&stream);
            let expected = Frame::decode(v).unwrap();
            let mut found = false;
            while let Some(r) = f.next_frame() {
                if r.as_ref().ok() == Some(&expected) {
                    found = true;
                }
            }
            assert!(found, "frame lost after garbage {stream:02X?}");
        }
    }
}
