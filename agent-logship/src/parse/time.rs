//! Times: a log line's local `yyyy-MM-dd HH:mm:ss,SSS` read in the configured zone
//! (`AGENT_LOGSHIP_TIMEZONE`), the CRI runtime's RFC 3339 time, and `@timestamp` written as
//! RFC 3339 UTC with milliseconds.

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
