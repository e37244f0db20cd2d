//! xs:duration as WS-Man writes it (`wsman:OperationTimeout`, `rsp:IdleTimeOut`).

use std::time::Duration;

/// Parses the xs:duration forms WS-Man uses for OperationTimeout (`PT20S`, `PT60.000S`,
/// `PT1M30S`, `P0DT0H1M`). Returns None for anything else.
pub fn parse_xs_duration(s: &str) -> Option<Duration> {
    let rest = s.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut secs = 0f64;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, mult) = units.iter().find(|(u, _)| *u == c)?;
                secs += num.parse::<f64>().ok()? * mult;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('D', 86_400.0)])?;
    take(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xs_durations() {
        assert_eq!(parse_xs_duration("PT20S"), Some(Duration::from_secs(20)));
        assert_eq!(
            parse_xs_duration("PT60.000S"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_xs_duration("PT1M30S"), Some(Duration::from_secs(90)));
        assert_eq!(parse_xs_duration("P0DT0H1M"), Some(Duration::from_secs(60)));
        assert_eq!(parse_xs_duration("P1D"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_xs_duration("20"), None);
        assert_eq!(parse_xs_duration("PT20X"), None);
        assert_eq!(parse_xs_duration("PT20"), None);
    }
}
