//! The curves and tables at their edges, as the standards draw them.

use kare_firmware::classify::*;
use kare_firmware::detector::EventKind::{Dip, Interruption, Swell};

#[test]
fn itic_lower_edge_steps_at_20ms_half_second_and_ten_seconds() {
    // Anything shorter than 20 ms is ridden through, even a total loss.
    assert_eq!(itic(Interruption, 0.019, 0.0), Itic::Inside);
    assert_eq!(itic(Dip, 0.021, 69.9), Itic::Below);
    assert_eq!(itic(Dip, 0.021, 70.0), Itic::Inside);
    assert_eq!(itic(Dip, 0.5, 70.0), Itic::Inside);
    assert_eq!(itic(Dip, 0.51, 75.0), Itic::Below);
    assert_eq!(itic(Dip, 10.0, 80.0), Itic::Inside);
    assert_eq!(itic(Dip, 10.5, 85.0), Itic::Below);
}

#[test]
fn itic_upper_edge_for_swells() {
    assert_eq!(itic(Swell, 0.0005, 190.0), Itic::Inside);
    assert_eq!(itic(Swell, 0.002, 141.0), Itic::Above);
    assert_eq!(itic(Swell, 0.2, 119.0), Itic::Inside);
    assert_eq!(itic(Swell, 0.2, 121.0), Itic::Above);
    assert_eq!(itic(Swell, 0.6, 111.0), Itic::Above);
    assert_eq!(itic(Swell, 0.6, 110.0), Itic::Inside);
}

#[test]
fn semi_f47_has_no_requirement_below_50ms_or_after_1s_and_none_for_swells() {
    assert_eq!(semi_f47(Dip, 0.04, 10.0), Some(SemiF47::Inside));
    assert_eq!(semi_f47(Dip, 0.1, 49.0), Some(SemiF47::Below));
    assert_eq!(semi_f47(Dip, 0.1, 50.0), Some(SemiF47::Inside));
    assert_eq!(semi_f47(Dip, 0.3, 65.0), Some(SemiF47::Below));
    assert_eq!(semi_f47(Dip, 0.8, 79.0), Some(SemiF47::Below));
    assert_eq!(semi_f47(Dip, 0.8, 81.0), Some(SemiF47::Inside));
    // The 80 % line drawn on to 10 s by some tools is not F47.
    assert_eq!(semi_f47(Dip, 2.0, 75.0), Some(SemiF47::Inside));
    assert_eq!(semi_f47(Swell, 0.1, 130.0), None);
}

#[test]
fn en50160_dip_table_cells() {
    let c = en50160_dip_cell(0.1, 85.0).unwrap();
    assert_eq!((c.row, c.column), ("90>u>=80", "10-200ms"));
    let c = en50160_dip_cell(0.3, 80.0).unwrap();
    assert_eq!((c.row, c.column), ("90>u>=80", "200-500ms"));
    let c = en50160_dip_cell(0.75, 50.0).unwrap();
    assert_eq!((c.row, c.column), ("70>u>=40", "0.5-1s"));
    let c = en50160_dip_cell(2.2, 5.5).unwrap();
    assert_eq!((c.row, c.column), ("40>u>=5", "1-5s"));
    let c = en50160_dip_cell(30.0, 1.0).unwrap();
    assert_eq!((c.row_index, c.column_index), (4, 4));
    assert_eq!(en50160_dip_cell(0.005, 50.0), None, "shorter than 10 ms");
    assert_eq!(en50160_dip_cell(61.0, 50.0), None, "longer than a minute");
}

#[test]
fn en50160_swell_table_cells() {
    let c = en50160_swell_cell(0.2, 125.0).unwrap();
    assert_eq!((c.row, c.column), ("u>=120", "10-500ms"));
    let c = en50160_swell_cell(3.0, 115.0).unwrap();
    assert_eq!((c.row, c.column), ("120>u>110", "0.5-5s"));
    assert_eq!(en50160_swell_cell(3.0, 110.0), None);
}

#[test]
fn ieee1159_categories_count_cycles_of_the_system_frequency() {
    assert_eq!(ieee1159(Dip, 0.5, 50.0), Ieee1159::Instantaneous); // 25 cycles
    assert_eq!(ieee1159(Dip, 0.55, 60.0), Ieee1159::Momentary); // 33 cycles
    assert_eq!(ieee1159(Dip, 0.55, 50.0), Ieee1159::Instantaneous); // 27.5 cycles
    assert_eq!(ieee1159(Interruption, 0.1, 50.0), Ieee1159::Momentary);
    assert_eq!(ieee1159(Swell, 10.0, 50.0), Ieee1159::Temporary);
    assert_eq!(ieee1159(Interruption, 61.0, 50.0), Ieee1159::Sustained);
}
