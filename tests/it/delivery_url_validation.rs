//! Destination URL validation: what is refused (and why), what `allow_private` lets through, and
//! what the hint shows.

use std::net::IpAddr;

use shipwatch_service::domain::destination_url::{
    DestinationUrlError as E, MAX_URL_LENGTH, is_forbidden_ip, url_hint, validate_destination_url,
};

#[test]
fn forbidden_targets_are_refused_unless_private_destinations_are_allowed() {
    let table: &[(&str, E)] = &[
        ("http://hooks.example.com/x", E::NotHttps),
        ("ftp://hooks.example.com/x", E::NotHttps),
        ("https://user:pass@hooks.example.com/x", E::HasCredentials),
        ("https://user@hooks.example.com/x", E::HasCredentials),
        // IPv4 ranges
        ("https://127.0.0.1/x", E::ForbiddenAddress),
        ("https://127.8.9.10/x", E::ForbiddenAddress),
        ("https://10.1.2.3/x", E::ForbiddenAddress),
        ("https://172.16.0.1/x", E::ForbiddenAddress),
        ("https://172.31.255.254/x", E::ForbiddenAddress),
        ("https://192.168.1.1/x", E::ForbiddenAddress),
        (
            "https://169.254.169.254/latest/meta-data",
            E::ForbiddenAddress,
        ),
        ("https://169.254.0.1/x", E::ForbiddenAddress),
        ("https://0.0.0.0/x", E::ForbiddenAddress),
        ("https://0.1.2.3/x", E::ForbiddenAddress),
        ("https://100.64.0.1/x", E::ForbiddenAddress),
        ("https://100.127.255.255/x", E::ForbiddenAddress),
        ("https://255.255.255.255/x", E::ForbiddenAddress),
        ("https://224.0.0.1/x", E::ForbiddenAddress),
        ("https://239.255.255.250/x", E::ForbiddenAddress),
        ("https://192.0.2.10/x", E::ForbiddenAddress),
        ("https://198.51.100.10/x", E::ForbiddenAddress),
        ("https://203.0.113.10/x", E::ForbiddenAddress),
        ("https://198.18.0.1/x", E::ForbiddenAddress),
        ("https://240.0.0.1/x", E::ForbiddenAddress),
        // IPv4 spellings the URL standard turns into loopback
        ("https://2130706433/x", E::ForbiddenAddress),
        ("https://0x7f.0.0.1/x", E::ForbiddenAddress),
        ("https://127.1/x", E::ForbiddenAddress),
        // IPv6 forms
        ("https://[::1]/x", E::ForbiddenAddress),
        ("https://[::]/x", E::ForbiddenAddress),
        ("https://[fe80::1]/x", E::ForbiddenAddress),
        ("https://[febf::1]/x", E::ForbiddenAddress),
        ("https://[fc00::1]/x", E::ForbiddenAddress),
        ("https://[fd12:3456::1]/x", E::ForbiddenAddress),
        ("https://[ff02::1]/x", E::ForbiddenAddress),
        ("https://[2001:db8::1]/x", E::ForbiddenAddress),
        ("https://[::ffff:127.0.0.1]/x", E::ForbiddenAddress),
        ("https://[::ffff:169.254.169.254]/x", E::ForbiddenAddress),
        ("https://[::ffff:10.0.0.1]/x", E::ForbiddenAddress),
        ("https://[::127.0.0.1]/x", E::ForbiddenAddress),
        ("https://[64:ff9b::a9fe:a9fe]/x", E::ForbiddenAddress),
        ("https://[2002:7f00:1::]/x", E::ForbiddenAddress),
        // names
        ("https://localhost/x", E::ForbiddenHostName),
        ("https://LOCALHOST./x", E::ForbiddenHostName),
        ("https://api.localhost/x", E::ForbiddenHostName),
        ("https://metadata.google.internal/x", E::ForbiddenHostName),
        ("https://printer.local/x", E::ForbiddenHostName),
    ];
    for (raw, expected) in table {
        assert_eq!(
            validate_destination_url(raw, false).as_ref().err(),
            Some(expected),
            "{raw}"
        );
    }
    // With private destinations allowed, only what is malformed or carries credentials stays out.
    for (raw, expected) in table {
        let allowed = validate_destination_url(raw, true);
        match expected {
            E::HasCredentials => assert_eq!(allowed.err(), Some(E::HasCredentials), "{raw}"),
            E::NotHttps if raw.starts_with("ftp") => {
                assert_eq!(allowed.err(), Some(E::NotHttps), "{raw}")
            }
            _ => assert!(
                allowed.is_ok(),
                "{raw} should be allowed with allow_private"
            ),
        }
    }
}

#[test]
fn public_https_urls_are_accepted() {
    for raw in [
        "https://hooks.slack.com/services/T000/B000/XXXX",
        "https://discord.com/api/webhooks/123/abc",
        "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x",
        "https://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://100.128.0.1/hook",
        "https://172.32.0.1/hook",
        "  https://example.com/with-spaces-around  ",
    ] {
        assert!(validate_destination_url(raw, false).is_ok(), "{raw}");
    }
}

#[test]
fn malformed_empty_and_oversized_urls_are_refused() {
    assert_eq!(validate_destination_url("", false).err(), Some(E::Empty));
    assert_eq!(validate_destination_url("   ", true).err(), Some(E::Empty));
    assert_eq!(
        validate_destination_url("not a url", false).err(),
        Some(E::Malformed)
    );
    assert_eq!(
        validate_destination_url("https://", false).err(),
        Some(E::Malformed)
    );
    assert_eq!(
        validate_destination_url("mailto:a@b.c", true).err(),
        Some(E::NotHttps)
    );
    let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
    assert_eq!(
        validate_destination_url(&long, false).err(),
        Some(E::TooLong)
    );
    let at_limit = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH - 20));
    assert!(validate_destination_url(&at_limit, false).is_ok());
}

#[test]
fn error_messages_say_what_to_do_and_never_repeat_the_url() {
    let secret_path = "https://user:pw@10.0.0.1/services/SECRETTOKEN123";
    for raw in [
        secret_path,
        "http://example.com/services/SECRETTOKEN123",
        "https://localhost/SECRETTOKEN123",
    ] {
        let message = validate_destination_url(raw, false)
            .expect_err("refused")
            .to_string();
        assert!(!message.contains("SECRETTOKEN123"), "{message}");
        assert!(!message.contains("10.0.0.1"), "{message}");
        assert!(message.contains("destination URL"), "{message}");
    }
}

#[test]
fn is_forbidden_ip_is_usable_on_resolved_addresses() {
    for forbidden in [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "::1",
        "fd00::1",
        "::ffff:192.168.0.1",
    ] {
        let ip: IpAddr = forbidden.parse().expect("ip");
        assert!(is_forbidden_ip(ip), "{forbidden}");
    }
    for public in [
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "::ffff:1.1.1.1",
    ] {
        let ip: IpAddr = public.parse().expect("ip");
        assert!(!is_forbidden_ip(ip), "{public}");
    }
}

#[test]
fn hints_show_the_host_and_four_characters_only() {
    let url = validate_destination_url(
        "https://hooks.slack.com/services/T0123/B0456/abcdefghijklmnopWXYZ",
        false,
    )
    .expect("valid");
    let hint = url_hint(&url);
    assert_eq!(hint, "https://hooks.slack.com/…/WXYZ");
    let teams = validate_destination_url(
        "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=SECRETSIG",
        false,
    )
    .expect("valid");
    let hint = url_hint(&teams);
    assert!(
        !hint.contains("SECRETSIG") && !hint.contains("workflows"),
        "{hint}"
    );
    assert_eq!(hint, "https://prod-01.westus.logic.azure.com/…/voke");
}
