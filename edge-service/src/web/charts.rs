//! The pages' and the report's charts, as inline SVG text: the ITIC and SEMI F47 curves with one
//! clickable point per event (log time axis), an event's RMS profile (full size and as a
//! thumbnail), and energy per day as bars.
//!
//! plotters draws the axes, grid, curves and lines (SVG backend only: the browser renders the
//! text, so no font is compiled in). The event points are drawn here, at the coordinates
//! plotters' own mapping gives, because each must be a link (`<a href>`) with a tooltip, which
//! plotters cannot emit. plotters escapes the text it writes; ours is escaped with
//! [`xml_escape`].

use crate::web::i18n::Lang;
use kare_firmware::classify::{itic_lower_pct, itic_upper_pct, semi_f47_limit_pct};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::fmt::Write as _;

/// One event as a point on a ride-through chart.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPoint {
    /// Where the point links to (`/events/7`, or `#event-7` inside the printable report).
    pub href: String,
    /// Tooltip (plain text; escaped here).
    pub label: String,
    /// Duration, seconds (clamped to the axis).
    pub duration_s: f64,
    /// Residual (dip) or maximum (swell), % of nominal.
    pub pct: f64,
    /// Outside the curve's tolerance (drawn red).
    pub outside: bool,
}

/// Which ride-through curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// ITIC (CBEMA): lower and upper edges, 0.1 ms … 100 s (its 200 % step ends at 1 ms), 0 … 200 %.
    Itic,
    /// SEMI F47-0706: 50 ms … 1 s only, 10 ms … 10 s shown, 0 … 100 %.
    SemiF47,
}

/// Escapes text for SVG/HTML text and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Where a step curve changes value: every breakpoint of the firmware's ITIC and F47 functions
/// (domain.md §3). Between two breakpoints each function is constant; the curve's values are
/// the firmware's own, evaluated here, so the chart cannot disagree with the verdicts.
const ITIC_BREAKS: [f64; 5] = [0.001, 0.003, 0.02, 0.5, 10.0];
const F47_BREAKS: [f64; 4] = [0.05, 0.2, 0.5, 1.0];

/// A step function drawn as a polyline from `x0` to `x1` through `breaks` (right-closed steps:
/// `f(b)` holds up to and including `b`, as the firmware's functions do).
fn staircase(
    f: impl Fn(f64) -> Option<f64>,
    breaks: &[f64],
    x0: f64,
    x1: f64,
) -> Vec<Vec<(f64, f64)>> {
    let mut xs: Vec<f64> = breaks
        .iter()
        .copied()
        .filter(|b| *b > x0 && *b < x1)
        .collect();
    xs.push(x0);
    xs.push(x1);
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut runs: Vec<Vec<(f64, f64)>> = vec![];
    let mut cur: Vec<(f64, f64)> = vec![];
    for w in xs.windows(2) {
        let mid = (w[0] * w[1]).sqrt();
        match f(mid) {
            Some(y) => {
                if let Some(&(_, py)) = cur.last() {
                    if py != y {
                        cur.push((w[0], y));
                    }
                } else {
                    cur.push((w[0], y));
                }
                cur.push((w[1], y));
            }
            None => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// The SVG of a ride-through chart with the events on it.
pub fn ride_through(curve: Curve, points: &[EventPoint], lang: Lang) -> String {
    let (x0, x1, y1, title) = match curve {
        Curve::Itic => (0.0001, 100.0, 200.0, lang.t("chart-itic-title")),
        Curve::SemiF47 => (0.01, 10.0, 100.0, lang.t("chart-f47-title")),
    };
    let (w, h) = (640u32, 400u32);
    let mut svg = String::new();
    let mut placed: Vec<(i32, i32, &EventPoint)> = vec![];
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d((x0..x1).log_scale(), 0.0..y1);
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let x_desc = lang.t("chart-axis-duration");
        let y_desc = lang.t("chart-axis-voltage");
        let _ = chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| fmt_seconds(*v))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw();
        let curve_style = ShapeStyle::from(&RGBColor(30, 60, 150)).stroke_width(2);
        let runs = match curve {
            Curve::Itic => {
                let mut r = staircase(
                    |d| Some(itic_lower_pct(d as f32) as f64),
                    &ITIC_BREAKS,
                    x0,
                    x1,
                );
                r.extend(staircase(
                    |d| Some(itic_upper_pct(d as f32) as f64),
                    &ITIC_BREAKS,
                    x0,
                    x1,
                ));
                r
            }
            Curve::SemiF47 => staircase(
                |d| semi_f47_limit_pct(d as f32).map(|v| v as f64),
                &F47_BREAKS,
                x0,
                x1,
            ),
        };
        for run in runs {
            let _ = chart.draw_series(LineSeries::new(run, curve_style));
        }
        for p in points {
            let d = if p.duration_s.is_finite() {
                p.duration_s.clamp(x0, x1)
            } else {
                x0
            };
            let v = if p.pct.is_finite() {
                p.pct.clamp(0.0, y1)
            } else {
                0.0
            };
            let (x, y) = chart.backend_coord(&(d, v));
            placed.push((x, y, p));
        }
        let _ = root.present();
    }
    let mut dots = String::from("<g class=\"event-points\">");
    for (x, y, p) in placed {
        let fill = if p.outside { "#c0392b" } else { "#1e8449" };
        let _ = write!(
            dots,
            "<a href=\"{}\"><circle cx=\"{x}\" cy=\"{y}\" r=\"6\" fill=\"{fill}\" fill-opacity=\"0.8\" stroke=\"#222\" stroke-width=\"1\"><title>{}</title></circle></a>",
            xml_escape(&p.href),
            xml_escape(&p.label)
        );
    }
    dots.push_str("</g>");
    finish(svg, &dots, &title)
}

/// Inserts `extra` before `</svg>`, makes the SVG scale with its box, and names it for screen
/// readers.
fn finish(svg: String, extra: &str, title: &str) -> String {
    let Some(end) = svg.rfind("</svg>") else {
        return svg;
    };
    let mut out = String::with_capacity(svg.len() + extra.len() + 64);
    out.push_str(&svg[..end]);
    out.push_str(extra);
    out.push_str(&svg[end..]);
    // plotters writes `<svg width=".." height=".." viewBox=".."`: keep the viewBox, let CSS size it.
    out.replacen(
        "<svg ",
        &format!(
            "<svg role=\"img\" aria-label=\"{}\" class=\"chart\" ",
            xml_escape(title)
        ),
        1,
    )
}

/// `0.001` → `1ms`, `0.5` → `0.5s`, `10` → `10s`.
fn fmt_seconds(v: f64) -> String {
    if v < 1.0 {
        let ms = v * 1000.0;
        if ms < 1.0 {
            format!("{ms:.1}ms")
        } else {
            format!("{ms:.0}ms")
        }
    } else {
        format!("{v:.0}s")
    }
}

/// An RMS profile: seconds from the event's start, and per channel % of Udin per point.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Profile {
    /// Seconds from the event's start.
    pub t_s: Vec<f64>,
    /// (channel name, % of Udin per point).
    pub channels: Vec<(String, Vec<f64>)>,
}

const CHANNEL_COLOURS: [RGBColor; 4] = [
    RGBColor(192, 57, 43),
    RGBColor(39, 174, 96),
    RGBColor(41, 128, 185),
    RGBColor(120, 120, 120),
];

/// An event's RMS profile: full size with axes (`thumbnail = false`) or a small sparkline, with
/// the dip and swell thresholds dashed.
pub fn profile_chart(p: &Profile, lang: Lang, thumbnail: bool) -> String {
    let vmax = p
        .channels
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(120.0f64, f64::max)
        .min(250.0);
    lines(
        p,
        lang,
        thumbnail,
        0.0..vmax,
        "chart-axis-time",
        "chart-axis-voltage",
        "chart-profile-title",
        true,
    )
}

/// A waveform capture: `t_s` from its first sample, instantaneous volts per channel.
pub fn waveform_chart(p: &Profile, lang: Lang) -> String {
    let vmax = p
        .channels
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, |m, v| m.max(v.abs()))
        * 1.05;
    lines(
        p,
        lang,
        false,
        -vmax..vmax,
        "chart-axis-time",
        "chart-axis-volts",
        "chart-waveform-title",
        false,
    )
}

#[allow(clippy::too_many_arguments)]
fn lines(
    p: &Profile,
    lang: Lang,
    thumbnail: bool,
    y: std::ops::Range<f64>,
    x_desc: &str,
    y_desc: &str,
    title_id: &str,
    limits: bool,
) -> String {
    let (w, h) = if thumbnail {
        (240u32, 90u32)
    } else {
        (720, 320)
    };
    let t0 = p.t_s.iter().copied().fold(f64::INFINITY, f64::min);
    let t1 = p.t_s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (t0, t1) = if t0.is_finite() && t1 > t0 {
        (t0, t1)
    } else {
        (0.0, 1.0)
    };
    let title = lang.t(title_id);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let mut b = ChartBuilder::on(&root);
        if thumbnail {
            b.margin(4);
        } else {
            b.margin(10).x_label_area_size(40).y_label_area_size(56);
        }
        let Ok(mut chart) = b.build_cartesian_2d(t0..t1, y) else {
            return String::new();
        };
        if !thumbnail {
            let _ = chart
                .configure_mesh()
                .x_desc(lang.t(x_desc))
                .y_desc(lang.t(y_desc))
                .light_line_style(RGBColor(235, 235, 235))
                .draw();
        }
        if limits {
            draw_limits(&mut chart, t0, t1);
        }
        for (i, (name, vals)) in p.channels.iter().enumerate() {
            let colour = CHANNEL_COLOURS[i % CHANNEL_COLOURS.len()];
            let pts: Vec<(f64, f64)> = p
                .t_s
                .iter()
                .zip(vals)
                .filter(|(t, v)| t.is_finite() && v.is_finite())
                .map(|(t, v)| (*t, *v))
                .collect();
            let width = if thumbnail { 1 } else { 2 };
            let series = chart.draw_series(LineSeries::new(pts, colour.stroke_width(width)));
            if !thumbnail {
                if let Ok(s) = series {
                    s.label(name.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
                }
            }
        }
        if !thumbnail && !p.channels.is_empty() {
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw();
        }
        let _ = root.present();
    }
    finish(svg, "", &title)
}

/// The dip (90 %) and swell (110 %) thresholds, dashed.
fn draw_limits<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    t0: f64,
    t1: f64,
) {
    let style = ShapeStyle::from(&RGBColor(150, 150, 150)).stroke_width(1);
    for level in [90.0, 110.0] {
        let _ = chart.draw_series(DashedLineSeries::new(
            vec![(t0, level), (t1, level)],
            6,
            4,
            style,
        ));
    }
}

/// Energy per day as bars (`(label, kWh)`), labels thinned to fit.
pub fn energy_bars(days: &[(String, f64)], lang: Lang) -> String {
    let (w, h) = (720u32, 300u32);
    let n = days.len().max(1);
    let vmax = days
        .iter()
        .map(|d| d.1)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let vmax = if vmax > 0.0 { vmax * 1.1 } else { 1.0 };
    let title = lang.t("chart-energy-title");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let Ok(mut chart) = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n as f64, 0.0..vmax)
        else {
            return String::new();
        };
        let step = n.div_ceil(10).max(1);
        let label = |v: &f64| -> String {
            let i = v.floor() as usize;
            if (v - v.floor()).abs() < 1e-9 && i.is_multiple_of(step) {
                days.get(i)
                    .map(|d| d.0.get(5..).unwrap_or(&d.0).to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(40))
            .x_label_formatter(&label)
            .y_desc(lang.t("chart-axis-kwh"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw();
        let bar = RGBColor(41, 128, 185).filled();
        let _ = chart.draw_series(
            days.iter()
                .enumerate()
                .filter(|(_, d)| d.1.is_finite())
                .map(|(i, d)| {
                    Rectangle::new([(i as f64 + 0.1, 0.0), (i as f64 + 0.9, d.1.max(0.0))], bar)
                }),
        );
        let _ = root.present();
    }
    finish(svg, "", &title)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: i64, d: f64, pct: f64, outside: bool) -> EventPoint {
        EventPoint {
            href: format!("/events/{id}"),
            label: format!("dip {id} <b>"),
            duration_s: d,
            pct,
            outside,
        }
    }

    #[test]
    fn every_event_is_a_link_on_the_itic_chart() {
        let svg = ride_through(
            Curve::Itic,
            &[point(7, 0.2, 60.0, true), point(8, 0.05, 85.0, false)],
            Lang::En,
        );
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("<a href=\"/events/7\"><circle"));
        assert!(svg.contains("<a href=\"/events/8\"><circle"));
        // The tooltip's text is escaped; the red point is the one outside.
        assert!(svg.contains("<title>dip 7 &lt;b&gt;</title>"));
        assert!(svg.contains("fill=\"#c0392b\""));
        assert!(svg.contains("ITIC"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn a_point_lower_on_the_chart_is_a_deeper_dip_and_longer_is_further_right() {
        let svg = ride_through(
            Curve::Itic,
            &[point(1, 0.01, 80.0, false), point(2, 1.0, 20.0, true)],
            Lang::En,
        );
        let coord = |id: i64| -> (i32, i32) {
            let at = svg.find(&format!("/events/{id}\"")).unwrap();
            let rest = &svg[at..];
            let num = |key: &str| -> i32 {
                let i = rest.find(key).unwrap() + key.len();
                rest[i..].split('"').next().unwrap().parse().unwrap()
            };
            (num("cx=\""), num("cy=\""))
        };
        let (x1, y1) = coord(1);
        let (x2, y2) = coord(2);
        assert!(x2 > x1 && y2 > y1, "({x1},{y1}) vs ({x2},{y2})");
    }

    #[test]
    fn the_curves_follow_the_firmware_functions() {
        // The ITIC lower edge: 0 % to 20 ms, 70 % to 0.5 s, 80 % to 10 s, 90 % after.
        let runs = staircase(
            |d| Some(itic_lower_pct(d as f32) as f64),
            &ITIC_BREAKS,
            0.001,
            100.0,
        );
        assert_eq!(runs.len(), 1);
        assert_eq!(
            runs[0],
            vec![
                (0.001, 0.0),
                (0.003, 0.0),
                (0.02, 0.0),
                (0.02, 70.0),
                (0.5, 70.0),
                (0.5, 80.0),
                (10.0, 80.0),
                (10.0, 90.0),
                (100.0, 90.0)
            ]
        );
        // SEMI F47: nothing below 50 ms or after 1 s.
        let f47 = staircase(
            |d| semi_f47_limit_pct(d as f32).map(f64::from),
            &F47_BREAKS,
            0.01,
            10.0,
        );
        assert_eq!(f47.len(), 1);
        assert_eq!(f47[0].first(), Some(&(0.05, 50.0)));
        assert_eq!(f47[0].last(), Some(&(1.0, 80.0)));
    }

    #[test]
    fn chart_text_is_in_the_language_asked() {
        let svg = ride_through(Curve::SemiF47, &[], Lang::ZhCn);
        assert!(svg.contains("持续时间"), "{svg}");
        let p = Profile {
            t_s: vec![0.0, 0.01, 0.02],
            channels: vec![("VA<x>".into(), vec![100.0, 50.0, 100.0])],
        };
        let full = profile_chart(&p, Lang::En, false);
        assert!(full.contains("VA&lt;x&gt;"), "a channel name is escaped");
        let thumb = profile_chart(&p, Lang::En, true);
        assert!(thumb.len() < full.len());
        let bars = energy_bars(
            &[("2026-11-01".into(), 120.0), ("2026-11-02".into(), 80.0)],
            Lang::En,
        );
        assert!(bars.contains("<rect"), "{bars}");
    }
}
