//! `current_datetime`: now, in a time zone (IANA name) or UTC.

use serde_json::{Map, Value, json};

pub(super) const NAME: &str = "current_datetime";
pub(super) const DESCRIPTION: &str =
    "Get the current date and time. Optionally give an IANA time zone such as \"Europe/Paris\" (default: UTC).";

pub(super) fn schema() -> Value {
    super::object_schema(
        json!({"timezone": {"type": "string", "description": "IANA time zone name, e.g. \"America/New_York\" (default: UTC)"}}),
        &[],
    )
}

pub(super) fn call(args: &Map<String, Value>) -> Result<String, String> {
    let zone = super::str_arg(args, "timezone").filter(|z| !z.trim().is_empty()).unwrap_or("UTC");
    let tz = jiff::tz::TimeZone::get(zone).map_err(|_| format!("unknown time zone {zone:?} (use an IANA name such as \"Europe/Paris\")"))?;
    let now = jiff::Timestamp::now().to_zoned_datetime(tz);
    Ok(format!("{} ({zone}, {})", now.strftime("%Y-%m-%dT%H:%M:%S%:z"), now.strftime("%A %-d %B %Y, %H:%M")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_by_name_and_unknown_ones_refused() {
        let mut args = Map::new();
        let utc = call(&args).unwrap();
        assert!(utc.contains("+00:00") && utc.contains("(UTC,"), "{utc}");
        args.insert("timezone".into(), "Asia/Kolkata".into());
        assert!(call(&args).unwrap().contains("+05:30"));
        args.insert("timezone".into(), "Mars/Olympus".into());
        assert!(call(&args).unwrap_err().contains("unknown time zone"));
    }
}
