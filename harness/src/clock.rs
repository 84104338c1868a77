//! Wall-clock time as the harness records it: Unix seconds, the unit of the engine's own
//! timestamps, labels and timeline marks.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds (0 on a clock set before 1970).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Now, in whole Unix seconds (as labels carry it).
pub fn unix_now_secs() -> u64 {
    unix_now() as u64
}

/// Seconds since the epoch of an RFC 3339 UTC time as Docker writes it
/// (`2026-11-27T13:44:50.123456789Z`).
pub fn unix_time_of_rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_times_parse() {
        assert_eq!(unix_time_of_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            unix_time_of_rfc3339("2026-11-27T13:44:50.5Z"),
            Some(1_795_787_090.5)
        );
        assert_eq!(unix_time_of_rfc3339("garbage"), None);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(unix_now() > 1_577_836_800.0);
        assert!(unix_now_secs() > 1_577_836_800);
    }
}
