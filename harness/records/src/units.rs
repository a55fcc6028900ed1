//! Units as the flags, scenario files and CSVs write them: durations.

use std::time::Duration;

/// Parses `10s`, `1.5s`, `500ms`, `200us`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected a number with unit h, m, s, ms or us, e.g. 1.5s or 200ms");
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(v * scale).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_that_parse() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("500ms", Duration::from_millis(500)),
            ("200us", Duration::from_micros(200)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("3", Duration::from_secs(3)),
            ("0.25", Duration::from_millis(250)),
            ("0s", Duration::ZERO),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn durations_that_do_not_parse() {
        for s in [
            "", "s", "10x", "-1s", "1.2.3s", ".5s", "5.s", "ten", "1e3", "10 s", "1sec", "inf",
        ] {
            let err = parse_duration(s).expect_err(s);
            assert!(err.contains(&format!("{s:?}")), "message names the value: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
