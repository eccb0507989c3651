//! `mqtt://[USER[:PASSWORD]@]HOST:PORT` (or `mqtts://` for TLS): the remote of a bridge, parsed by
//! hand (two schemes, no path).
//!
//! The user name and password are percent-decoded (`%40` is `@`, `%3A` is `:`), as in any URL. The
//! last `@` ends them, so an unescaped `@` in a password still works. A password never appears in an
//! error: [`redact`] writes `***` in its place.

use super::BridgeLogin;

/// What a bridge URL names.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Remote {
    pub host: String,
    pub port: u16,
    pub login: Option<BridgeLogin>,
    /// `mqtts://`: over TLS.
    pub tls: bool,
}

/// Parses `url`, or says what is wrong with it (never quoting the password).
pub(super) fn parse(url: &str) -> Result<Remote, String> {
    let (tls, rest) = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mqtt") => (false, rest),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mqtts") => (true, rest),
        _ => return Err("it must start with mqtt:// (or mqtts:// for TLS)".into()),
    };
    let (login, host_port) = match rest.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(login(userinfo)?), host_port),
        None => (None, rest),
    };
    // One trailing slash is harmless; any other path, a query or a fragment is not.
    let host_port = host_port.strip_suffix('/').unwrap_or(host_port);
    if host_port.contains(['/', '?', '#']) {
        return Err("it may not have a path, query or fragment: mqtt://HOST:PORT".into());
    }
    let (host, port) = host_port
        .rsplit_once(':')
        .ok_or("it must name a port: mqtt://HOST:PORT")?;
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed
            .strip_suffix(']')
            .ok_or("an IPv6 address needs its closing `]`: mqtt://[::1]:1883")?,
        None if host.contains(':') => {
            return Err("an IPv6 address goes in brackets: mqtt://[::1]:1883".into());
        }
        None => host,
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if let Some(c) = host
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '+' | '*' | '[' | ']'))
    {
        return Err(format!("the host may not contain {:?}", c));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or("the port must be a number from 1 to 65535")?;
    Ok(Remote {
        host: host.to_string(),
        port,
        login,
        tls,
    })
}

/// `USER[:PASSWORD]`, percent-decoded.
fn login(userinfo: &str) -> Result<BridgeLogin, String> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let user = decode(user).map_err(|why| format!("the user name {why}"))?;
    let password = decode(password).map_err(|why| format!("the password {why}"))?;
    if user.is_empty() {
        return Err(
            "the user name before `@` is empty (MQTT sends no password without one)".into(),
        );
    }
    Ok(BridgeLogin { user, password })
}

/// Percent-decodes `text`; says what is wrong (without quoting it).
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("has a `%` not followed by two hex digits (write `%25` for `%`)")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| "is not UTF-8 once decoded".to_string())?;
    if text.contains('\0') {
        return Err("contains a NUL character, which MQTT forbids".into());
    }
    Ok(text)
}

/// `url` with the password, if any, replaced by `***`, for messages.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // Everything before the last `@` is userinfo, whatever it holds.
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(host: &str, port: u16, login: Option<(&str, &str)>) -> Remote {
        Remote {
            host: host.into(),
            port,
            login: login.map(|(user, password)| BridgeLogin {
                user: user.into(),
                password: password.into(),
            }),
            tls: false,
        }
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            parse("mqtt://127.0.0.1:1883"),
            Ok(remote("127.0.0.1", 1883, None))
        );
        assert_eq!(
            parse("MQTT://broker.example:1884/"),
            Ok(remote("broker.example", 1884, None))
        );
        assert_eq!(parse("mqtt://[::1]:1883"), Ok(remote("::1", 1883, None)));
        let tls = Remote {
            tls: true,
            ..remote("broker.lan", 8883, Some(("u", "p")))
        };
        assert_eq!(parse("mqtts://u:p@broker.lan:8883"), Ok(tls));
    }

    #[test]
    fn user_and_password_are_taken_from_the_userinfo_and_percent_decoded() {
        assert_eq!(
            parse("mqtt://user:pw@host:1883"),
            Ok(remote("host", 1883, Some(("user", "pw"))))
        );
        assert_eq!(
            parse("mqtt://us%40er:p%3Aw%25d@host:1"),
            Ok(remote("host", 1, Some(("us@er", "p:w%d"))))
        );
        // The last `@` ends the userinfo, so an unescaped one in a password still works.
        assert_eq!(
            parse("mqtt://user:p@ss@host:1"),
            Ok(remote("host", 1, Some(("user", "p@ss"))))
        );
        assert_eq!(
            parse("mqtt://user@host:1"),
            Ok(remote("host", 1, Some(("user", ""))))
        );
        assert_eq!(
            parse("mqtt://%C3%A9t%C3%A9:x@[::1]:2"),
            Ok(remote("::1", 2, Some(("été", "x"))))
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let why = |url: &str| parse(url).unwrap_err();
        assert!(why("http://x:1").contains("mqtt://"));
        assert!(why("https://x:1").contains("mqtts://"));
        assert!(why("mqtt://x").contains("port"));
        assert!(why("mqtt://x:0").contains("port"));
        assert!(why("mqtt://x:99999").contains("port"));
        assert!(why("mqtt://:1").contains("host is empty"));
        assert!(why("mqtt://u:p@:1").contains("host is empty"));
        assert!(why("mqtt://::1:1883").contains("brackets"));
        assert!(why("mqtt://[::1:1883").contains("`]`"));
        assert!(why("mqtt://x:1/path").contains("path"));
        assert!(why("mqtt://x:1?q").contains("query"));
        assert!(why("mqtt://a+b:1").contains("'+'"));
        assert!(why("mqtt://a b:1").contains("' '"));
        assert!(why("mqtt://:pw@x:1").contains("user name"));
        assert!(why("mqtt://u%4:pw@x:1").contains("user name has a `%`"));
        assert!(why("mqtt://u:p%zz@x:1").contains("password has a `%`"));
        assert!(why("mqtt://u:%FF@x:1").contains("password is not UTF-8"));
        assert!(why("mqtt://u%00:p@x:1").contains("NUL"));
    }

    #[test]
    fn errors_never_quote_the_password() {
        for url in [
            "mqtt://u:secret%zz@x:1",
            "mqtt://u:secret@x:0",
            "mqtt://u:secret@:1",
            "mqtt://u:sec/ret@x:1/path",
        ] {
            assert!(!parse(url).unwrap_err().contains("secret"), "{url}");
        }
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(redact("mqtt://u:secret@x:1"), "mqtt://u:***@x:1");
        assert_eq!(redact("mqtt://u:se@cret@x:1/p"), "mqtt://u:***@x:1/p");
        assert_eq!(redact("mqtt://u:p/ss@x:1"), "mqtt://u:***@x:1");
        assert_eq!(redact("mqtt://u@x:1"), "mqtt://u@x:1");
        assert_eq!(redact("mqtt://x:1"), "mqtt://x:1");
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
