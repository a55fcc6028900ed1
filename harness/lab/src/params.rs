//! Run parameters: how each is written and parsed.

use fleet::worker::Stall;
use records::units::parse_duration;

/// `IDX:FACTOR`, e.g. `0:10`.
pub fn parse_slow(s: &str) -> Result<(usize, f64), String> {
    let (idx, factor) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not IDX:FACTOR (e.g. 0:10)"))?;
    let idx = idx
        .parse()
        .map_err(|_| format!("'{idx}' in '{s}' is not a worker index"))?;
    match factor.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok((idx, f)),
        _ => Err(format!("'{factor}' in '{s}' is not a positive factor")),
    }
}

/// `IDX:AT:FOR`, e.g. `0:1s:300ms`.
pub fn parse_stall(s: &str) -> Result<(usize, Stall), String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [idx, at, length] = parts[..] else {
        return Err(format!("'{s}' is not IDX:AT:FOR (e.g. 0:1s:300ms)"));
    };
    let idx = idx
        .parse()
        .map_err(|_| format!("'{idx}' in '{s}' is not a worker index"))?;
    let at = parse_duration(at)?;
    let length = parse_duration(length)?;
    if length.is_zero() {
        return Err(format!("'{s}': the stall must last more than 0"));
    }
    Ok((idx, Stall { at, length }))
}
