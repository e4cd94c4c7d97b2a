//! Times: a log line's local `yyyy-MM-dd HH:mm:ss,SSS` read in the configured zone
//! (`AGENT_LOGSHIP_TIMEZONE`), the CRI runtime's RFC 3339 time, and `@timestamp` written as
//! RFC 3339 UTC with milliseconds.

use std::cell::Cell;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// A time zone setting that names no zone we know.
#[derive(Debug, thiserror::Error)]
pub enum TimeZoneError {
    #[error(
        "time zone {0:?} is neither UTC, a fixed offset like +02:00, nor a known IANA name like Europe/London"
    )]
    Unknown(String),
}

/// `UTC` (or `Z`), a fixed offset (`+02:00`, `-0530`, `+02`), or an IANA name (`Europe/London`,
/// looked up in the system tzdb, else the copy built into the binary).
pub fn parse_time_zone(s: &str) -> Result<TimeZone, TimeZoneError> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Ok(TimeZone::UTC);
    }
    if let Some(sign) = s.strip_prefix('+').map(|r| (1, r)).or_else(|| s.strip_prefix('-').map(|r| (-1, r))) {
        return fixed_offset(sign.0, sign.1)
            .map(TimeZone::fixed)
            .ok_or_else(|| TimeZoneError::Unknown(s.to_owned()));
    }
    TimeZone::get(s).map_err(|_| TimeZoneError::Unknown(s.to_owned()))
}

fn fixed_offset(sign: i32, hm: &str) -> Option<Offset> {
    let digits: String = hm.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(hm.len() == 2 || digits.len() == 4) {
        return None;
    }
    let h: i32 = digits.get(..2)?.parse().ok()?;
    let m: i32 = digits.get(2..).filter(|m| !m.is_empty()).map_or(Some(0), |m| m.parse().ok())?;
    if h > 23 || m > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

fn num(b: &[u8]) -> Option<i32> {
    b.iter().try_fold(0i32, |n, d| d.is_ascii_digit().then(|| n * 10 + i32::from(d - b'0')))
}

/// `yyyy-MM-dd HH:mm:ss,SSS` (also `T`, `.`) in `tz`; `None` if it is no valid time (the
/// second of a DST gap is read as the zone's "compatible" choice: moved forward).
pub fn parse_line_time(b: &[u8], tz: &TimeZone) -> Option<Timestamp> {
    let b = b.get(..23)?;
    let f = |r: std::ops::Range<usize>| num(&b[r]);
    let dt = DateTime::new(
        i16::try_from(f(0..4)?).ok()?,
        i8::try_from(f(5..7)?).ok()?,
        i8::try_from(f(8..10)?).ok()?,
        i8::try_from(f(11..13)?).ok()?,
        i8::try_from(f(14..16)?).ok()?,
        i8::try_from(f(17..19)?).ok()?,
        f(20..23)? * 1_000_000,
    )
    .ok()?;
    tz.to_ambiguous_timestamp(dt).compatible().ok()
}

/// Reads log4j times in one zone; fixed zones (UTC, `+02:00`) by arithmetic, without a
/// time-zone lookup per line (the hot path: one call per record).
#[derive(Debug, Clone)]
pub enum LineTime {
    /// Seconds east of UTC.
    Fixed(i64),
    Zone(TimeZone),
}

impl LineTime {
    pub fn new(tz: &TimeZone) -> Self {
        match tz.to_fixed_offset() {
            Ok(offset) => LineTime::Fixed(i64::from(offset.seconds())),
            Err(_) => LineTime::Zone(tz.clone()),
        }
    }

    /// `yyyy-MM-dd HH:mm:ss,SSS` (also `T`, `.`) as Unix milliseconds; `None` if no valid time.
    pub fn unix_ms(&self, b: &[u8]) -> Option<i64> {
        match self {
            LineTime::Fixed(offset) => {
                let b = b.get(..23)?;
                let f = |r: std::ops::Range<usize>| num(&b[r]).map(i64::from);
                let (y, m, d) = (f(0..4)?, f(5..7)?, f(8..10)?);
                let (hh, mm, ss, ms) = (f(11..13)?, f(14..16)?, f(17..19)?, f(20..23)?);
                if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 59
                {
                    return None;
                }
                let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset;
                Some(secs * 1000 + ms)
            }
            LineTime::Zone(tz) => parse_line_time(b, tz).map(|ts| ts.as_millisecond()),
        }
    }
}

/// Writes log4j line times as `@timestamp` text, remembering the last second it rendered: lines
/// come in time order, often hundreds a second, and a local second always maps to the same UTC
/// second (in a zone with summer time too: the mapping is a function of the local time) — so
/// within a second only the milliseconds are new, and are copied from the line.
#[derive(Debug)]
pub struct LineStamp {
    time: LineTime,
    /// The last line's `yyyy-MM-dd HH:mm:ss` and its UTC `yyyy-MM-ddTHH:mm:ss`.
    last: Cell<Option<([u8; 19], [u8; 19])>>,
}

impl LineStamp {
    pub fn new(tz: &TimeZone) -> Self {
        LineStamp { time: LineTime::new(tz), last: Cell::new(None) }
    }

    /// Appends `2026-11-27T13:53:32.123Z` (UTC) for the line time `t`
    /// (`yyyy-MM-dd HH:mm:ss,SSS`); writes nothing and returns false if it is not a valid time.
    pub fn write(&self, t: &[u8], out: &mut Vec<u8>) -> bool {
        let (Some(second), Some(millis)) = (t.get(..19), t.get(20..23)) else { return false };
        if let Some((local, utc)) = self.last.get()
            && local == second
            && millis.iter().all(u8::is_ascii_digit)
        {
            out.extend_from_slice(&utc);
            out.push(b'.');
            out.extend_from_slice(millis);
            out.push(b'Z');
            return true;
        }
        let Some(ms) = self.time.unix_ms(t) else { return false };
        let at = out.len();
        write_unix_ms(ms, out);
        if let (Ok(local), Ok(utc)) = (<[u8; 19]>::try_from(second), <[u8; 19]>::try_from(&out[at..at + 19]))
        {
            self.last.set(Some((local, utc)));
        }
        true
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (`civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Appends Unix milliseconds as `2026-11-27T13:53:32.123Z`.
pub fn write_unix_ms(ms: i64, out: &mut Vec<u8>) {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999));
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, rem / 3_600_000);
    put(14, 2, rem / 60_000 % 60);
    put(17, 2, rem / 1000 % 60);
    put(20, 3, rem % 1000);
    out.extend_from_slice(&b);
}

/// A CRI runtime time (RFC 3339, nanoseconds, any offset).
pub fn parse_cri_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Appends `2026-11-27T13:53:32.123Z`.
pub fn write_rfc3339_millis(ts: Timestamp, out: &mut Vec<u8>) {
    let dt = Offset::UTC.to_datetime(ts);
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i32| {
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, i32::from(dt.year()).max(0));
    put(5, 2, i32::from(dt.month()));
    put(8, 2, i32::from(dt.day()));
    put(11, 2, i32::from(dt.hour()));
    put(14, 2, i32::from(dt.minute()));
    put(17, 2, i32::from(dt.second()));
    put(20, 3, i32::from(dt.millisecond()));
    out.extend_from_slice(&b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ts: Timestamp) -> String {
        let mut v = Vec::new();
        write_rfc3339_millis(ts, &mut v);
        String::from_utf8(v).expect("ascii")
    }

    #[test]
    fn utc_and_fixed_offsets() {
        let utc = parse_time_zone("UTC").expect("utc");
        let ts = parse_line_time(b"2026-11-27 13:53:32,123", &utc).expect("ts");
        assert_eq!(fmt(ts), "2026-11-27T13:53:32.123Z");
        let plus2 = parse_time_zone("+02:00").expect("+02:00");
        let ts = parse_line_time(b"2026-11-27T13:53:32.123", &plus2).expect("ts");
        assert_eq!(fmt(ts), "2026-11-27T11:53:32.123Z");
        let minus = parse_time_zone("-0530").expect("-0530");
        assert_eq!(
            fmt(parse_line_time(b"2026-01-01 00:00:00,000", &minus).expect("ts")),
            "2026-01-01T05:30:00.000Z"
        );
    }

    #[test]
    fn iana_zone_with_dst() {
        let london = parse_time_zone("Europe/London").expect("known zone");
        // Summer (BST, +01:00) and winter (GMT).
        assert_eq!(
            fmt(parse_line_time(b"2026-07-01 12:00:00,000", &london).expect("ts")),
            "2026-07-01T11:00:00.000Z"
        );
        assert_eq!(
            fmt(parse_line_time(b"2026-12-01 12:00:00,000", &london).expect("ts")),
            "2026-12-01T12:00:00.000Z"
        );
        // 01:30 on 2026-03-29 does not exist in London: read forward.
        assert_eq!(
            fmt(parse_line_time(b"2026-03-29 01:30:00,000", &london).expect("ts")),
            "2026-03-29T01:30:00.000Z"
        );
    }

    #[test]
    fn bad_zones_and_times() {
        for z in ["Mars/Olympus", "+25:00", "+2", "", "+02:0x"] {
            let e = parse_time_zone(z).expect_err(z);
            assert!(e.to_string().contains(&format!("{:?}", z.trim())), "{e}");
        }
        let utc = TimeZone::UTC;
        assert_eq!(parse_line_time(b"2026-02-30 13:53:32,123", &utc), None);
        assert_eq!(parse_line_time(b"2026-11-27 25:53:32,123", &utc), None);
        assert_eq!(parse_line_time(b"2026-11-27 13:53", &utc), None);
    }

    proptest::proptest! {
        /// The arithmetic path agrees with jiff for every valid time and fixed offset.
        #[test]
        fn fixed_offsets_agree_with_jiff(secs in 86_400i64..253_402_000_000, ms in 0i64..1000, off in -50_400i32..50_400) {
            let off = off / 60 * 60;
            let tz = TimeZone::fixed(Offset::from_seconds(off).expect("offset"));
            let ts = Timestamp::from_second(secs).expect("ts");
            let local = tz.to_datetime(ts);
            let text = format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02},{ms:03}", local.year(), local.month(), local.day(), local.hour(), local.minute(), local.second());
            let fast = LineTime::new(&tz).unix_ms(text.as_bytes());
            let slow = parse_line_time(text.as_bytes(), &tz).map(|t| t.as_millisecond());
            proptest::prop_assert_eq!(fast, slow);
            let mut a = Vec::new();
            let mut b = Vec::new();
            write_unix_ms(secs * 1000 + ms, &mut a);
            write_rfc3339_millis(Timestamp::from_millisecond(secs * 1000 + ms).expect("ts"), &mut b);
            proptest::prop_assert_eq!(a, b);
        }

        /// The remembered second changes nothing: a run of lines (seconds repeated, going back,
        /// bad ones between) written as if each were read alone, in a fixed zone and in one with
        /// summer time (Europe/London's switch of 2026-03-29 01:00 UTC inside the range).
        #[test]
        fn line_stamp_is_the_plain_conversion(
            lines in proptest::collection::vec((0i64..7200, 0i64..1000, proptest::bool::ANY), 1..60),
            zone in proptest::sample::select(vec!["UTC", "+05:30", "Europe/London"]),
        ) {
            let tz = parse_time_zone(zone).expect("zone");
            let stamp = LineStamp::new(&tz);
            let base = 1_774_742_400; // 2026-03-29 00:00 UTC
            for (secs, ms, bad) in lines {
                let local = tz.to_datetime(Timestamp::from_second(base + secs).expect("ts"));
                let text = if bad {
                    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02},x{ms:02}", local.year(), local.month(), local.day(), local.hour(), local.minute(), local.second())
                } else {
                    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02},{ms:03}", local.year(), local.month(), local.day(), local.hour(), local.minute(), local.second())
                };
                let mut got = Vec::new();
                let written = stamp.write(text.as_bytes(), &mut got);
                let mut want = Vec::new();
                let expected = LineTime::new(&tz).unix_ms(text.as_bytes()).map(|ms| write_unix_ms(ms, &mut want));
                proptest::prop_assert_eq!(written, expected.is_some(), "{}", text);
                proptest::prop_assert_eq!(&got, &want, "{}", text);
            }
        }
    }

    #[test]
    fn fixed_path_rejects_bad_dates() {
        let l = LineTime::new(&TimeZone::UTC);
        assert!(matches!(l, LineTime::Fixed(0)));
        for bad in [
            &b"2026-02-29 00:00:00,000"[..],
            b"2026-13-01 00:00:00,000",
            b"2026-04-31 00:00:00,000",
            b"2026-01-01 24:00:00,000",
            b"2026-01-01 00:00:60,000",
            b"2026-01-01",
        ] {
            assert_eq!(l.unix_ms(bad), None);
        }
        assert_eq!(l.unix_ms(b"2024-02-29 00:00:00,001"), Some(1_709_164_800_001));
        assert!(matches!(LineTime::new(&parse_time_zone("Europe/London").expect("tz")), LineTime::Zone(_)));
    }

    #[test]
    fn cri_times() {
        assert_eq!(
            fmt(parse_cri_time("2026-11-27T13:53:32.123456789Z").expect("ts")),
            "2026-11-27T13:53:32.123Z"
        );
        assert_eq!(
            fmt(parse_cri_time("2026-11-27T14:53:32.1+01:00").expect("ts")),
            "2026-11-27T13:53:32.100Z"
        );
        assert_eq!(parse_cri_time("yesterday"), None);
    }
}
