//! Values more than one subcommand takes on its command line: socket addresses (host names resolve),
//! the endpoint address of `--attach`, bridge filters, and sizes in bytes. Each is checked while the command line is
//! parsed, so a bad one exits 2 with a message naming its option.

use std::net::{SocketAddr, ToSocketAddrs};

/// `HOST:PORT` as a socket address: an IP address and a port (`127.0.0.1:1883`, `[::1]:1883`), or a
/// host name that resolves (its first IPv4 address if it has one, as `localhost` is usually meant).
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the address is empty; give HOST:PORT, such as 127.0.0.1:1883".into());
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "`{text}` has no port; give HOST:PORT, such as {text}:1883"
        ));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port (a number from 0 to 65535)"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!(
            "`{text}` has no host; give HOST:PORT, such as 127.0.0.1:{port}"
        ));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            format!(
                "cannot resolve host `{host}` ({e}); give an IP address, such as 127.0.0.1:{port}"
            )
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| {
            format!("host `{host}` has no address; give an IP address, such as 127.0.0.1:{port}")
        })
}

/// `HOST:PORT` checked as [`parse_socket_addr`] checks it (it must resolve), and kept as the text given,
/// for the reports that name it (`load --mqtt`).
pub fn parse_host_port(text: &str) -> Result<String, String> {
    parse_socket_addr(text).map(|_| text.trim().to_string())
}

/// The endpoint address of `--attach`: `HOST:PORT`, optionally after `http://`. Checked here (it
/// must resolve) and kept as text, so each reconnect resolves a host name again.
pub fn parse_attach(text: &str) -> Result<String, String> {
    let addr = text
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    parse_socket_addr(addr).map(|_| text.trim().to_string())
}

/// A filter of `--bridge-out` or `--bridge-in`, valid by the broker's default limits.
pub fn parse_bridge_filter(text: &str) -> Result<String, String> {
    switchyard::validate_filter(text, &switchyard::TopicLimits::default())
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// A size in bytes: `1048576`, `512KiB`, `16MiB`, `1GiB` (binary units, as `load` prints them); at
/// least 1.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |at| s.split_at(at));
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit `{unit}`: give BYTES, or a number with KiB, MiB or GiB"
            ));
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("`{s}` is not a size: give BYTES, or a number with KiB, MiB or GiB")
    })?;
    match n.checked_mul(scale) {
        Some(0) => Err("must be at least 1 byte".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("`{s}` is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_resolve_and_say_what_is_missing() {
        assert_eq!(
            parse_socket_addr("127.0.0.1:1883").unwrap(),
            "127.0.0.1:1883".parse().unwrap()
        );
        assert!(parse_socket_addr("localhost:0").unwrap().ip().is_loopback());
        assert!(
            parse_socket_addr("127.0.0.1")
                .unwrap_err()
                .contains("no port")
        );
        assert!(parse_socket_addr("").unwrap_err().contains("empty"));
        assert!(parse_socket_addr(":80").unwrap_err().contains("no host"));
        assert!(
            parse_socket_addr("h:99999")
                .unwrap_err()
                .contains("not a port")
        );
        assert_eq!(
            parse_attach("http://127.0.0.1:9475/").unwrap(),
            "http://127.0.0.1:9475/"
        );
    }
}
