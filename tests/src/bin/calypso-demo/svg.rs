//! The timeline picture as SVG text: a title, one lane per component with its bands coloured by
//! status over time, agent-logship's counters below them, lines across at the marked moments, a
//! time axis in seconds with ticks, and a legend.
//!
//! Pure: a [`Picture`] in, a string out. SVG is text, so no library: everything written from the
//! picture's data is escaped ([`escape`]). The structure carries what a reader of the file (a
//! test) needs without looking at pixels: `<g class="lane" data-component="…">`, `<g
//! class="band" data-band="…">`, `<rect class="segment" data-state="…" data-from="…"
//! data-to="…">` (seconds), `<g class="counter" data-series="…">` with `<circle class="sample"
//! data-at="…" data-value="…">`, `<g class="marker" data-at="…">`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::timeline::{Band, Picture, Series, Status};

const WIDTH: f64 = 1100.0;
/// Where the plot begins and ends: lane and band labels live left of it.
const PLOT_LEFT: f64 = 230.0;
const PLOT_RIGHT: f64 = WIDTH - 30.0;
const MAIN_BAND: f64 = 22.0;
const THIN_BAND: f64 = 8.0;
const BAND_GAP: f64 = 3.0;
const LANE_GAP: f64 = 14.0;
const COUNTER_HEIGHT: f64 = 34.0;
/// Each marker's label has a row of its own above the lanes, so close markers do not overlap.
const MARKER_ROW: f64 = 14.0;
/// Roughly how wide a character of the legend's 11px sans-serif is, to lay entries out.
const CHAR_WIDTH: f64 = 6.2;

/// Each status's colour: greens for good, reds for RED (light while starting), blue for held
/// back by agent-wait, greys for nothing there.
pub fn fill(status: Status) -> &'static str {
    match status {
        Status::NotListening => "#d5d5d5",
        Status::Waiting => "#8fb8e6",
        Status::Starting => "#f2a5a0",
        Status::Ready => "#3c9d4e",
        Status::NotReady => "#c2352b",
        Status::NoAnswer => "#7a7a7a",
        Status::Live => "#1e5e2c",
        Status::NotLive => "#7b2d8e",
    }
}

/// The SVG document of `picture`.
pub fn render(picture: &Picture) -> String {
    let scale = Scale::new(picture.end);
    let mut out = Out::default();

    // Above the lanes: the markers' labels, one row each.
    let markers_top = 66.0;
    let lanes_top = markers_top + MARKER_ROW * picture.markers.len() as f64 + 6.0;
    let mut y = lanes_top;
    let mut lanes = Out::default();
    for lane in &picture.lanes {
        lanes.line(format_args!("<g class=\"lane\" data-component=\"{}\">", escape(&lane.component)));
        lanes.line(format_args!(
            "<text class=\"lane-label\" x=\"16\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            num(y + MAIN_BAND / 2.0 + 5.0),
            escape(&lane.component)
        ));
        for band in &lane.bands {
            let height = if band.band == Band::Health { MAIN_BAND } else { THIN_BAND };
            lanes.line(format_args!("<g class=\"band\" data-band=\"{}\">", band.band.name()));
            lanes.line(format_args!(
                "<rect class=\"band-background\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#f3f3f3\"/>",
                num(PLOT_LEFT),
                num(y),
                num(PLOT_RIGHT - PLOT_LEFT),
                num(height)
            ));
            if !band.band.label().is_empty() {
                lanes.line(format_args!(
                    "<text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"end\" fill=\"#444\">{}</text>",
                    num(PLOT_LEFT - 6.0),
                    num(y + height / 2.0 + 3.0),
                    escape(band.band.label())
                ));
            }
            for s in &band.segments {
                let (x, width) = scale.span(s.from, s.to);
                let mut tip = format!(
                    "{}: {:.1}s to {:.1}s",
                    s.status.label(),
                    s.from.as_secs_f64(),
                    s.to.as_secs_f64()
                );
                if !s.detail.is_empty() {
                    tip.push('\n');
                    tip.push_str(&s.detail);
                }
                lanes.line(format_args!(
                    "<rect class=\"segment\" data-state=\"{}\" data-from=\"{}\" data-to=\"{}\" x=\"{}\" y=\"{}\" \
width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                    s.status.name(),
                    secs(s.from),
                    secs(s.to),
                    num(x),
                    num(y),
                    num(width),
                    num(height),
                    fill(s.status),
                    escape(&tip)
                ));
            }
            lanes.line(format_args!("</g>"));
            y += height + BAND_GAP;
        }
        lanes.line(format_args!("</g>"));
        y += LANE_GAP - BAND_GAP;
    }

    // agent-logship's counters: one row per series, each on its own scale (logs outnumber Events
    // a hundred to one).
    let counters = &picture.counters;
    lanes.line(format_args!("<g class=\"track\" data-component=\"{}\">", escape(&counters.component)));
    lanes.line(format_args!(
        "<text class=\"lane-label\" x=\"16\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        num(y + 17.0),
        escape(&counters.component)
    ));
    for series in &counters.series {
        counter(&mut lanes, &scale, series, y);
        y += COUNTER_HEIGHT + BAND_GAP;
    }
    lanes.line(format_args!("</g>"));
    let lanes_bottom = y;

    // Title, then the grid behind the lanes, the lanes, the markers over them.
    out.line(format_args!(
        "<text class=\"title\" x=\"16\" y=\"30\" font-size=\"20\" font-weight=\"bold\">{}</text>",
        escape(&picture.title)
    ));
    out.line(format_args!(
        "<text class=\"subtitle\" x=\"16\" y=\"50\" font-size=\"12\" fill=\"#444\">{}</text>",
        escape(&picture.subtitle)
    ));
    let ticks = scale.ticks();
    out.line(format_args!("<g class=\"grid\" stroke=\"#e2e2e2\">"));
    for t in &ticks {
        let x = num(scale.x_secs(*t));
        out.line(format_args!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"/>",
            num(lanes_top - 3.0),
            num(lanes_bottom)
        ));
    }
    out.line(format_args!("</g>"));
    out.push(&lanes.0);
    out.line(format_args!("<g class=\"markers\">"));
    for (i, m) in picture.markers.iter().enumerate() {
        let x = scale.x(m.at);
        let label_y = markers_top + MARKER_ROW * (i as f64 + 1.0) - 3.0;
        // Labels right of their line, or left of it in the right half, so they stay inside.
        let (anchor, dx) = if x > (PLOT_LEFT + PLOT_RIGHT) / 2.0 { ("end", -4.0) } else { ("start", 4.0) };
        out.line(format_args!("<g class=\"marker\" data-at=\"{}\">", secs(m.at)));
        out.line(format_args!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#222\" stroke-width=\"1.2\" stroke-dasharray=\"5 3\"/>",
            num(label_y - 9.0),
            num(lanes_bottom),
            x = num(x)
        ));
        out.line(format_args!(
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\">{}</text>",
            num(x + dx),
            num(label_y),
            escape(&format!("{} ({:.1}s)", m.label, m.at.as_secs_f64()))
        ));
        out.line(format_args!("</g>"));
    }
    out.line(format_args!("</g>"));

    // The time axis.
    let axis_y = lanes_bottom + 4.0;
    out.line(format_args!("<g class=\"axis\" font-size=\"10\" text-anchor=\"middle\">"));
    out.line(format_args!(
        "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#333\"/>",
        num(PLOT_LEFT),
        num(PLOT_RIGHT),
        y = num(axis_y)
    ));
    for t in &ticks {
        let x = num(scale.x_secs(*t));
        out.line(format_args!(
            "<g class=\"tick\" data-at=\"{}\"><line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#333\"/>\
<text x=\"{x}\" y=\"{}\">{}s</text></g>",
            num(*t),
            num(axis_y),
            num(axis_y + 5.0),
            num(axis_y + 17.0),
            num(*t)
        ));
    }
    out.line(format_args!(
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#444\">seconds since the demo started</text>",
        num((PLOT_LEFT + PLOT_RIGHT) / 2.0),
        num(axis_y + 33.0)
    ));
    out.line(format_args!("</g>"));

    // The legend: every status, wrapped to the width.
    let mut y = axis_y + 52.0;
    let mut x = 16.0;
    out.line(format_args!("<g class=\"legend\" font-size=\"11\">"));
    for status in Status::ALL {
        let width = 12.0 + 6.0 + status.label().chars().count() as f64 * CHAR_WIDTH + 18.0;
        if x + width > WIDTH - 16.0 {
            x = 16.0;
            y += 18.0;
        }
        out.line(format_args!(
            "<g class=\"legend-entry\" data-state=\"{}\"><rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
<text x=\"{}\" y=\"{}\">{}</text></g>",
            status.name(),
            num(x),
            num(y - 10.0),
            fill(status),
            num(x + 18.0),
            num(y),
            escape(status.label())
        ));
        x += width;
    }
    out.line(format_args!("</g>"));
    let height = y + 16.0;

    let mut doc = Out::default();
    doc.line(format_args!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    doc.line(format_args!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\">",
        w = num(WIDTH),
        h = num(height)
    ));
    doc.line(format_args!("<title>{}</title>", escape(&picture.title)));
    doc.line(format_args!("<desc>{}</desc>", escape(&picture.subtitle)));
    doc.line(format_args!("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"));
    doc.push(&out.0);
    doc.line(format_args!("</svg>"));
    doc.0
}

/// One counter's row at `top`: its samples joined by a line, each a dot with its value.
fn counter(out: &mut Out, scale: &Scale, series: &Series, top: f64) {
    let max = series.samples.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let y = |v: u64| top + COUNTER_HEIGHT - 2.0 - (v as f64 / max) * (COUNTER_HEIGHT - 6.0);
    out.line(format_args!("<g class=\"counter\" data-series=\"{}\">", escape(&series.name)));
    out.line(format_args!(
        "<rect class=\"band-background\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#f3f3f3\"/>",
        num(PLOT_LEFT),
        num(top),
        num(PLOT_RIGHT - PLOT_LEFT),
        num(COUNTER_HEIGHT)
    ));
    out.line(format_args!(
        "<text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"end\" fill=\"#444\">{}</text>",
        num(PLOT_LEFT - 6.0),
        num(top + COUNTER_HEIGHT / 2.0 + 3.0),
        escape(&series.label)
    ));
    if !series.samples.is_empty() {
        let points: Vec<String> =
            series.samples.iter().map(|(at, v)| format!("{},{}", num(scale.x(*at)), num(y(*v)))).collect();
        out.line(format_args!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#2166ac\" stroke-width=\"1.5\"/>",
            points.join(" ")
        ));
    }
    for (at, v) in &series.samples {
        out.line(format_args!(
            "<circle class=\"sample\" data-at=\"{}\" data-value=\"{v}\" cx=\"{}\" cy=\"{}\" r=\"2.2\" fill=\"#2166ac\">\
<title>{}</title></circle>",
            secs(*at),
            num(scale.x(*at)),
            num(y(*v)),
            escape(&format!("{}: {v} at {:.1}s", series.label, at.as_secs_f64()))
        ));
    }
    // The last count, top left: counts grow, so their line starts bottom left.
    if let Some((at, last)) = series.samples.last() {
        out.line(format_args!(
            "<text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>",
            num(PLOT_LEFT + 4.0),
            num(top + 11.0),
            escape(&format!("{last} at {:.1}s", at.as_secs_f64()))
        ));
    }
    out.line(format_args!("</g>"));
}

/// Seconds to x: the plot's width is the whole time axis, from 0 to `end` (at least a second,
/// so an empty picture still has an axis).
struct Scale {
    end: f64,
}

impl Scale {
    fn new(end: Duration) -> Scale {
        Scale { end: end.as_secs_f64().max(1.0) }
    }

    fn x(&self, t: Duration) -> f64 {
        self.x_secs(t.as_secs_f64())
    }

    fn x_secs(&self, t: f64) -> f64 {
        PLOT_LEFT + (t.clamp(0.0, self.end) / self.end) * (PLOT_RIGHT - PLOT_LEFT)
    }

    /// A segment's x and width.
    fn span(&self, from: Duration, to: Duration) -> (f64, f64) {
        let x = self.x(from);
        (x, (self.x(to) - x).max(0.0))
    }

    /// The ticks: 0 and every step up to the end, the step a round number giving at most a dozen.
    fn ticks(&self) -> Vec<f64> {
        const STEPS: [f64; 12] = [0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];
        let step = STEPS.into_iter().find(|s| self.end / s <= 12.0).unwrap_or((self.end / 12.0).ceil());
        (0..).map(|i| f64::from(i) * step).take_while(|t| *t <= self.end + 1e-9).collect()
    }
}

/// A coordinate: two decimals at most, no trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".to_string() } else { s.to_string() }
}

/// A time in seconds, to the millisecond, for the `data-` attributes.
fn secs(t: Duration) -> String {
    format!("{:.3}", t.as_secs_f64())
}

/// `text` made safe as XML character data and as a quoted attribute value: the five markup
/// characters as entities, and what XML 1.0 cannot hold at all (control characters other than
/// tab, newline and carriage return; U+FFFE, U+FFFF) as U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The document being written, a line at a time.
#[derive(Default)]
struct Out(String);

impl Out {
    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        // Writing into a String cannot fail.
        let _ = self.0.write_fmt(args);
        self.0.push('\n');
    }

    fn push(&mut self, text: &str) {
        self.0.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{BandSegments, Counters, Lane, Marker, Segment};

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn picture(lanes: Vec<Lane>, end: f64) -> Picture {
        Picture {
            title: "calypso-demo".into(),
            subtitle: "test".into(),
            end: s(end),
            lanes,
            counters: Counters { component: "agent-logship".into(), series: Vec::new() },
            markers: Vec::new(),
        }
    }

    fn lane(component: &str, bands: Vec<(Band, Vec<Segment>)>) -> Lane {
        Lane {
            component: component.into(),
            bands: bands.into_iter().map(|(band, segments)| BandSegments { band, segments }).collect(),
        }
    }

    fn segment(status: Status, from: f64, to: f64, detail: &str) -> Segment {
        Segment { status, from: s(from), to: s(to), detail: detail.into() }
    }

    fn attr(n: roxmltree::Node<'_, '_>, name: &str) -> f64 {
        n.attribute(name).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no number {name} in {n:?}"))
    }

    fn class<'a, 'i>(doc: &'a roxmltree::Document<'i>, class: &str) -> Vec<roxmltree::Node<'a, 'i>> {
        doc.descendants().filter(|n| n.attribute("class") == Some(class)).collect()
    }

    #[test]
    fn escape_makes_markup_and_control_characters_harmless() {
        assert_eq!(escape("a<b>&\"c'd"), "a&lt;b&gt;&amp;&quot;c&apos;d");
        assert_eq!(
            escape("tab\there\nnew\u{1}\u{1b}[0m\u{FFFF}"),
            "tab\there\nnew\u{FFFD}\u{FFFD}[0m\u{FFFD}"
        );
        assert_eq!(escape("Ünïcødé ✓"), "Ünïcødé ✓");
    }

    #[test]
    fn hostile_text_round_trips_through_an_xml_parser() {
        let hostile = "RED (Calypso/Startup: RED 'starting') <script>alert(\"&amp;\")</script> ]]>";
        let mut p = picture(
            vec![lane(
                "Engine<Server> & \"co\"",
                vec![(Band::Health, vec![segment(Status::Starting, 0.0, 1.0, hostile)])],
            )],
            2.0,
        );
        p.title = hostile.to_string();
        p.counters.series.push(Series {
            name: "lo\"gs".into(),
            label: "l<o>gs".into(),
            samples: vec![(s(1.0), 3)],
        });
        p.markers.push(Marker { at: s(1.5), label: "fail'over & <back>".into() });
        let svg = render(&p);
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert!(!svg.contains("<script>"), "{svg}");
        let title = doc.root_element().children().find(|n| n.has_tag_name("title")).expect("a title");
        assert_eq!(title.text(), Some(hostile));
        assert_eq!(class(&doc, "lane")[0].attribute("data-component"), Some("Engine<Server> & \"co\""));
        let tip = class(&doc, "segment")[0].first_element_child().and_then(|t| t.text()).expect("tooltip");
        assert!(tip.ends_with(hostile), "{tip}");
        assert_eq!(class(&doc, "counter")[0].attribute("data-series"), Some("lo\"gs"));
        assert!(doc.descendants().any(|n| n.text() == Some("fail'over & <back> (1.5s)")), "{svg}");
    }

    #[test]
    fn segments_are_placed_by_time_on_the_axis() {
        let p = picture(
            vec![lane(
                "DataServer",
                vec![(
                    Band::Health,
                    vec![segment(Status::Starting, 2.0, 4.0, ""), segment(Status::Ready, 4.0, 10.0, "GREEN")],
                )],
            )],
            10.0,
        );
        let svg = render(&p);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed");
        let segments = class(&doc, "segment");
        assert_eq!(segments.len(), 2);
        let plot = PLOT_RIGHT - PLOT_LEFT;
        let (starting, ready) = (segments[0], segments[1]);
        assert_eq!(starting.attribute("data-state"), Some("starting"));
        assert_eq!(
            (starting.attribute("data-from"), starting.attribute("data-to")),
            (Some("2.000"), Some("4.000"))
        );
        assert!((attr(starting, "x") - (PLOT_LEFT + 0.2 * plot)).abs() < 0.01, "{svg}");
        assert!((attr(starting, "width") - 0.2 * plot).abs() < 0.01, "{svg}");
        // Consecutive segments meet, and the last ends at the plot's right edge.
        assert!((attr(starting, "x") + attr(starting, "width") - attr(ready, "x")).abs() < 0.02);
        assert!((attr(ready, "x") + attr(ready, "width") - PLOT_RIGHT).abs() < 0.02);
        assert_eq!(attr(starting, "height"), MAIN_BAND);
        assert_eq!(ready.attribute("fill"), Some(fill(Status::Ready)));
        // Ticks every second, 0 to 10.
        let ticks: Vec<f64> = class(&doc, "tick").into_iter().map(|t| attr(t, "data-at")).collect();
        assert_eq!(ticks, (0..=10).map(f64::from).collect::<Vec<_>>());
    }

    #[test]
    fn thin_bands_are_thinner_and_follow_the_main_band() {
        let p = picture(
            vec![lane(
                "EngineServer",
                vec![
                    (Band::Health, vec![segment(Status::Ready, 0.0, 1.0, "")]),
                    (Band::Readyz, vec![segment(Status::NotReady, 0.0, 1.0, "503")]),
                    (Band::Livez, vec![segment(Status::Live, 0.0, 1.0, "200 ok")]),
                ],
            )],
            1.0,
        );
        let svg = render(&p);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed");
        let rects = class(&doc, "segment");
        let ys: Vec<f64> = rects.iter().map(|r| attr(*r, "y")).collect();
        assert!(ys.windows(2).all(|w| w[0] < w[1]), "{ys:?}");
        assert_eq!(
            rects.iter().map(|r| attr(*r, "height")).collect::<Vec<_>>(),
            [MAIN_BAND, THIN_BAND, THIN_BAND]
        );
        let bands: Vec<&str> = class(&doc, "band").iter().filter_map(|b| b.attribute("data-band")).collect();
        assert_eq!(bands, ["health", "readyz", "livez"]);
    }

    #[test]
    fn empty_lanes_and_an_empty_picture_are_still_drawn() {
        let empty = picture(Vec::new(), 0.0);
        let svg = render(&empty);
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(class(&doc, "lane").is_empty());
        assert_eq!(class(&doc, "tick").len(), 3, "0, 0.5 and 1 s on a one-second axis:\n{svg}");
        assert_eq!(class(&doc, "legend-entry").len(), Status::ALL.len());

        let mut p = picture(vec![lane("AuthServer", vec![(Band::Health, Vec::new())])], 5.0);
        p.counters.series.push(Series { name: "events".into(), label: "Events".into(), samples: Vec::new() });
        let svg = render(&p);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed");
        let lanes = class(&doc, "lane");
        assert_eq!(lanes.len(), 1);
        assert_eq!(lanes[0].attribute("data-component"), Some("AuthServer"));
        assert!(class(&doc, "segment").is_empty());
        assert_eq!(class(&doc, "band-background").len(), 2, "the lane's band and the counter's row");
        assert!(class(&doc, "sample").is_empty());
    }

    #[test]
    fn counters_mark_every_sample_with_its_value() {
        let mut p = picture(Vec::new(), 4.0);
        p.counters.series.push(Series {
            name: "logs".into(),
            label: "log records".into(),
            samples: vec![(s(0.0), 0), (s(2.0), 50), (s(4.0), 100)],
        });
        let svg = render(&p);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed");
        let samples = class(&doc, "sample");
        let values: Vec<f64> = samples.iter().map(|c| attr(*c, "data-value")).collect();
        assert_eq!(values, [0.0, 50.0, 100.0]);
        // Higher counts higher up, the largest at the top of the row.
        let cy: Vec<f64> = samples.iter().map(|c| attr(*c, "cy")).collect();
        assert!(cy[0] > cy[1] && cy[1] > cy[2], "{cy:?}");
        assert_eq!(class(&doc, "track")[0].attribute("data-component"), Some("agent-logship"));
    }

    #[test]
    fn markers_span_the_lanes_and_say_when() {
        let mut p = picture(vec![lane("DataServer", vec![(Band::Health, Vec::new())])], 10.0);
        p.markers.push(Marker { at: s(2.0), label: "failover".into() });
        p.markers.push(Marker { at: s(8.0), label: "back".into() });
        let svg = render(&p);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed");
        let markers = class(&doc, "marker");
        assert_eq!(markers.iter().map(|m| attr(*m, "data-at")).collect::<Vec<_>>(), [2.0, 8.0]);
        let texts: Vec<&str> = markers
            .iter()
            .flat_map(|m| m.descendants())
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(texts, ["failover (2.0s)", "back (8.0s)"]);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(230.0), "230");
        assert_eq!(num(12.345), "12.35");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(secs(s(1.5)), "1.500");
    }
}
