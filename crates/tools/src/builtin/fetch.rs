//! `fetch_url`: a web page as readable text, with size and time limits.
//!
//! A model can be talked into fetching anything, so unless `tools.fetch_allow_private` is on
//! a URL whose host resolves to a loopback, private, link-local or otherwise non-public
//! address is refused — every address the name resolves to is checked, the connection is
//! pinned to those checked addresses (no second lookup to rebind), and redirects are followed
//! by hand so each hop is checked the same way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::BuiltinSettings;

pub(super) const NAME: &str = "fetch_url";
pub(super) const DESCRIPTION: &str = "Fetch a web page (http or https) and return its readable text.";
const MAX_REDIRECTS: usize = 5;

pub(super) fn schema() -> Value {
    super::object_schema(json!({"url": {"type": "string", "description": "The http(s) URL to fetch"}}), &["url"])
}

/// True for addresses on the public internet; loopback, private, link-local, CGNAT,
/// documentation, multicast, reserved and unspecified ranges are not.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x0064 && seg[1] == 0xff9b) // NAT64 (embeds an IPv4 address)
                || v6 == Ipv6Addr::from_bits(1)) // ::1 spelled otherwise
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

pub(super) async fn call(settings: &BuiltinSettings, args: &Map<String, Value>) -> Result<String, String> {
    let raw = super::str_arg(args, "url").unwrap_or_default();
    let mut url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    let work = async {
        for _ in 0..=MAX_REDIRECTS {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("only http and https URLs can be fetched, not {}", url.scheme()));
            }
            let host = url.host_str().ok_or("the URL has no host")?.to_owned();
            let port = url.port_or_known_default().unwrap_or(80);
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => tokio::net::lookup_host((bare, port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .collect(),
            };
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address"));
            }
            if !settings.fetch_allow_private
                && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
            {
                return Err(format!(
                    "refused: {host} resolves to {}, a loopback or private address (tools.fetch_allow_private allows it)",
                    bad.ip()
                ));
            }
            crate::install_crypto();
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .resolve_to_addrs(bare, &addrs)
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?;
            let resp = client
                .get(url.clone())
                .header("accept", "text/html, text/plain, application/json;q=0.9, */*;q=0.5")
                .send()
                .await
                .map_err(|e| format!("fetching {url}: {e}"))?;
            if resp.status().is_redirection() {
                let loc = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("{url} redirected without a Location"))?;
                url = url.join(loc).map_err(|e| format!("bad redirect {loc:?}: {e}"))?;
                continue;
            }
            let status = resp.status();
            let ctype = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            let (bytes, cut) = read_capped(resp, settings.fetch_max_bytes).await?;
            let mut text = if ctype.contains("html") || (ctype.is_empty() && looks_like_html(&bytes)) {
                html2text::from_read(&bytes[..], 100).map_err(|e| format!("could not read the page: {e}"))?
            } else if ctype.is_empty() || ctype.starts_with("text/") || ctype.contains("json") || ctype.contains("xml") {
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                return Err(format!("{url} is {ctype}, not text"));
            };
            if cut {
                text.push_str(&format!("\n[cut at {} bytes: tools.fetch_max_bytes]", settings.fetch_max_bytes));
            }
            if !status.is_success() {
                return Err(format!("{url} answered HTTP {status}: {}", text.chars().take(500).collect::<String>()));
            }
            return Ok(text);
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    };
    tokio::time::timeout(settings.fetch_timeout, work).await.unwrap_or_else(|_| {
        Err(format!("the fetch took longer than {} s (tools.fetch_timeout_seconds)", settings.fetch_timeout.as_secs()))
    })
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    head.contains("<html") || head.contains("<!doctype html")
}

/// The body, at most `max` bytes (and whether it was cut).
pub(super) async fn read_capped(resp: reqwest::Response, max: u64) -> Result<(Vec<u8>, bool), String> {
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("reading the body: {e}"))?;
        let room = (max as usize).saturating_sub(out.len());
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for bad in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
            "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "255.255.255.255", "64:ff9b::7f00:1"]
        {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }
}
