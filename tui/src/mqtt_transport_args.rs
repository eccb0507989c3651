//! `switchyard serve`'s MQTT listeners beyond plain TCP: TLS (`--mqtt-tls`), WebSockets
//! (`--mqtt-ws`), WebSockets over TLS (`--mqtt-wss`), and the certificate options the TLS ones share,
//! named as Mosquitto's listener settings are (`certfile`, `keyfile`, `cafile` with
//! `require_certificate`, `use_identity_as_username`).

use std::net::SocketAddr;
use std::path::PathBuf;

use switchyard_mqtt::{Listener, TlsFileError, TlsServer, TlsServerFiles};

/// The TLS and WebSocket listeners and their certificates.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MqttTransportArgs {
    /// Listen for MQTT over TLS on ADDR, e.g. 0.0.0.0:8883 (needs --tls-cert and --tls-key).
    #[arg(long, value_name = "ADDR", value_parser = crate::cli_args::parse_socket_addr)]
    pub mqtt_tls: Option<SocketAddr>,
    /// Listen for MQTT over WebSockets on ADDR, e.g. 127.0.0.1:8080 (subprotocol `mqtt`, any path,
    /// such as ws://HOST:8080/mqtt).
    #[arg(long, value_name = "ADDR", value_parser = crate::cli_args::parse_socket_addr)]
    pub mqtt_ws: Option<SocketAddr>,
    /// Listen for MQTT over WebSockets over TLS (wss://) on ADDR, e.g. 0.0.0.0:8081 (needs --tls-cert
    /// and --tls-key).
    #[arg(long, value_name = "ADDR", value_parser = crate::cli_args::parse_socket_addr)]
    pub mqtt_wss: Option<SocketAddr>,
    /// The TLS listeners' certificate (PEM; a chain with the server's own certificate first).
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate signed by a CA of PEM on the TLS listeners; a client without
    /// one fails the handshake (counted per listener).
    #[arg(long, value_name = "PEM")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: the client certificate's common name (CN) is the client's user name, and
    /// the password file is not consulted for it (Mosquitto's `use_identity_as_username`).
    #[arg(long, requires = "tls_client_ca")]
    pub tls_use_identity_as_username: bool,
}

impl MqttTransportArgs {
    /// Whether any of these listeners was asked for.
    pub fn any(&self) -> bool {
        self.mqtt_tls.is_some() || self.mqtt_ws.is_some() || self.mqtt_wss.is_some()
    }

    /// The checks clap cannot make alone: a TLS listener needs a certificate and a key, and the
    /// certificate options need a TLS listener.
    pub fn check(&self) -> Result<(), String> {
        let tls_listener = self.mqtt_tls.is_some() || self.mqtt_wss.is_some();
        if tls_listener && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err(
                "--mqtt-tls and --mqtt-wss need the server's certificate and key: \
                 --tls-cert PEM --tls-key PEM (README, \"Running it on a network\", makes a pair \
                 with openssl)"
                    .into(),
            );
        }
        if !tls_listener
            && (self.tls_cert.is_some() || self.tls_key.is_some() || self.tls_client_ca.is_some())
        {
            return Err(
                "--tls-cert, --tls-key and --tls-client-ca are for a TLS listener: add \
                 --mqtt-tls ADDR or --mqtt-wss ADDR"
                    .into(),
            );
        }
        Ok(())
    }

    /// Every address with whether its listener requires client certificates (which lets only
    /// clients with a certificate from --tls-client-ca in, wherever the address is).
    pub fn addresses(&self) -> Vec<(SocketAddr, bool)> {
        let client_certificates = self.tls_client_ca.is_some();
        [
            (self.mqtt_tls, client_certificates),
            (self.mqtt_ws, false),
            (self.mqtt_wss, client_certificates),
        ]
        .into_iter()
        .filter_map(|(addr, certs)| Some((addr?, certs)))
        .collect()
    }

    /// The listeners asked for, after `tcp` (`--mqtt`) if given, their certificate files read once
    /// (an error names the file at fault).
    pub fn listeners(&self, tcp: Option<SocketAddr>) -> Result<Vec<Listener>, TlsFileError> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) if self.mqtt_tls.is_some() || self.mqtt_wss.is_some() => {
                Some(TlsServer::from_files(&TlsServerFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                    identity_as_user_name: self.tls_use_identity_as_username,
                })?)
            }
            _ => None,
        };
        let mut listeners: Vec<Listener> = tcp.map(Listener::tcp).into_iter().collect();
        if let (Some(addr), Some(tls)) = (self.mqtt_tls, &tls) {
            listeners.push(Listener::tls(addr, tls.clone()));
        }
        if let Some(addr) = self.mqtt_ws {
            listeners.push(Listener::websocket(addr));
        }
        if let (Some(addr), Some(tls)) = (self.mqtt_wss, tls) {
            listeners.push(Listener::websocket_tls(addr, tls));
        }
        Ok(listeners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_listener_needs_a_certificate_and_certificates_need_a_tls_listener() {
        let addr: SocketAddr = "127.0.0.1:8883".parse().unwrap();
        let tls_alone = MqttTransportArgs {
            mqtt_tls: Some(addr),
            ..MqttTransportArgs::default()
        };
        assert!(
            tls_alone
                .check()
                .unwrap_err()
                .contains("--tls-cert PEM --tls-key PEM")
        );
        let cert_alone = MqttTransportArgs {
            mqtt_ws: Some(addr),
            tls_cert: Some("c.pem".into()),
            ..MqttTransportArgs::default()
        };
        assert!(cert_alone.check().unwrap_err().contains("--mqtt-tls ADDR"));
        let complete = MqttTransportArgs {
            mqtt_wss: Some(addr),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..MqttTransportArgs::default()
        };
        assert!(complete.check().is_ok());
    }

    #[test]
    fn only_the_tls_listeners_count_client_certificates_as_a_login() {
        let a: SocketAddr = "0.0.0.0:8883".parse().unwrap(); // checked, never bound
        let b: SocketAddr = "0.0.0.0:8080".parse().unwrap(); // checked, never bound
        let args = MqttTransportArgs {
            mqtt_tls: Some(a),
            mqtt_ws: Some(b),
            tls_client_ca: Some("ca.pem".into()),
            ..MqttTransportArgs::default()
        };
        assert_eq!(args.addresses(), [(a, true), (b, false)]);
    }
}
