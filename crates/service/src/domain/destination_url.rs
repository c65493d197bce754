//! Destination URL safety: shipwatch posts to URLs its users type in, so a URL must not point it at
//! loopback, private networks or cloud metadata endpoints (SSRF). Checked when a destination is
//! created and again before every send; the HTTP sender's resolver applies [`is_forbidden_ip`] to
//! every address a name resolves to, so DNS answers cannot smuggle a private address in either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Longest destination URL accepted, in bytes.
pub const MAX_URL_LENGTH: usize = 2048;

/// Why a destination URL was refused. Messages say what to do and never repeat the URL (it is a
/// secret). The API maps every variant to 400 `invalid_destination_url`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationUrlError {
    #[error("the destination URL is empty: paste the full webhook URL")]
    Empty,
    #[error(
        "the destination URL is longer than {MAX_URL_LENGTH} bytes: paste the webhook URL exactly as the service gave it"
    )]
    TooLong,
    #[error("the destination URL could not be parsed: paste the full URL, starting with https://")]
    Malformed,
    #[error("the destination URL must start with https://")]
    NotHttps,
    #[error("the destination URL must have a host name")]
    MissingHost,
    #[error(
        "the destination URL must not contain a user name or password: use the plain webhook URL"
    )]
    HasCredentials,
    #[error(
        "the destination URL points to a loopback, private, link-local or reserved address: use a public https URL"
    )]
    ForbiddenAddress,
    #[error("the destination URL points to a local or internal host name: use a public https URL")]
    ForbiddenHostName,
}

/// Parses and checks a destination URL. With `allow_private` (development and tests only), http
/// and private or loopback targets are accepted too.
pub fn validate_destination_url(
    raw: &str,
    allow_private: bool,
) -> Result<Url, DestinationUrlError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(DestinationUrlError::Empty);
    }
    if trimmed.len() > MAX_URL_LENGTH {
        return Err(DestinationUrlError::TooLong);
    }
    let url = Url::parse(trimmed).map_err(|_| DestinationUrlError::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(DestinationUrlError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationUrlError::HasCredentials);
    }
    let host = url.host().ok_or(DestinationUrlError::MissingHost)?;
    if !allow_private {
        match host {
            Host::Ipv4(ip) if is_forbidden_ip(IpAddr::V4(ip)) => {
                return Err(DestinationUrlError::ForbiddenAddress);
            }
            Host::Ipv6(ip) if is_forbidden_ip(IpAddr::V6(ip)) => {
                return Err(DestinationUrlError::ForbiddenAddress);
            }
            Host::Domain(name) if is_forbidden_host_name(name) => {
                return Err(DestinationUrlError::ForbiddenHostName);
            }
            Host::Domain("") => return Err(DestinationUrlError::MissingHost),
            _ => {}
        }
    }
    Ok(url)
}

/// Host names that only ever mean "this machine" or "this private network".
fn is_forbidden_host_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "internal"
        || name.ends_with(".internal")
        || name.ends_with(".local")
}

/// Whether shipwatch must never connect to `ip` on a user's behalf: loopback, private, link-local
/// (including cloud metadata 169.254.169.254), unspecified, CGNAT, broadcast, multicast,
/// documentation, benchmarking and reserved ranges, IPv6 unique-local and site-local, and IPv6
/// forms that embed such an IPv4 address (mapped, compatible, NAT64, 6to4).
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_ipv4(v4),
        IpAddr::V6(v6) => is_forbidden_ipv6(v6),
    }
}

fn is_forbidden_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network" 0.0.0.0/8
        || ip.is_loopback() // 127.0.0.0/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16, cloud metadata
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
        || ip.is_multicast() // 224/4
        || a >= 240 // reserved 240/4 and broadcast
}

fn is_forbidden_ipv6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return true;
    }
    // fe80::/10 link-local, fec0::/10 deprecated site-local
    if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        return true;
    }
    // fc00::/7 unique local
    if segments[0] & 0xfe00 == 0xfc00 {
        return true;
    }
    // 2001:db8::/32 documentation, 100::/64 discard-only
    if (segments[0] == 0x2001 && segments[1] == 0x0db8)
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0])
    {
        return true;
    }
    if let Some(embedded) = embedded_ipv4(ip) {
        return is_forbidden_ipv4(embedded);
    }
    false
}

/// The IPv4 address inside IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64
/// (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::) addresses: each can route to that IPv4 address.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let octets = ip.octets();
    let tail = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if segments[..5] == [0, 0, 0, 0, 0] && (segments[5] == 0xffff || segments[5] == 0) {
        return Some(tail);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}

/// What responses show of a destination URL: scheme, host (and port), then `/…/` and the last
/// four characters of the path, e.g. `https://hooks.slack.com/…/Xy9z`. The query and most of the
/// path are the secret part and never appear; a path too short to hide is not shown at all.
pub fn url_hint(url: &Url) -> String {
    let host = match url.host() {
        Some(host) => host.to_string(),
        None => String::new(),
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let path = url.path().trim_end_matches('/');
    let path_chars: Vec<char> = path.chars().collect();
    // Showing 4 characters of a path of 12 or fewer would give away too much of it.
    let tail: String = if path_chars.len() > 12 {
        path_chars[path_chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("{}://{authority}/…/{tail}", url.scheme())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_shows_only_the_host_and_the_last_four_characters() {
        let url = validate_destination_url(
            "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXabcd?x=secret",
            false,
        )
        .unwrap();
        assert_eq!(url_hint(&url), "https://hooks.slack.com/…/abcd");
        let short = validate_destination_url("https://example.com/hook", false).unwrap();
        assert_eq!(url_hint(&short), "https://example.com/…/");
        let with_port =
            validate_destination_url("http://127.0.0.1:8080/a/b/c/d/e/f/ghij", true).unwrap();
        assert_eq!(url_hint(&with_port), "http://127.0.0.1:8080/…/ghij");
    }
}
