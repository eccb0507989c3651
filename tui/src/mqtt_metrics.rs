//! The MQTT listener's series in `/metrics` (`switchyard serve --mqtt ADDR --serve ADDR`): its
//! connections, and what its password file and ACL refused, by reason. Read from the listener's own
//! counters at scrape time, as the broker's series are ([`switchyard_observe::BrokerCollector`]).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `switchyard_mqtt_connections_accepted_total` | counter | |
//! | `switchyard_mqtt_connections_open` | gauge | |
//! | `switchyard_mqtt_auth_accepted_total` | counter | |
//! | `switchyard_mqtt_auth_refused_total` | counter | `reason`: `no_user_name`, `bad_user_name_or_password` |
//! | `switchyard_mqtt_acl_refused_total` | counter | `reason`: `subscribe`, `publish`, `will`, `retained_read`, `read` |
//! | `switchyard_mqtt_revoked_clients_total` | counter | |
//! | `switchyard_mqtt_reloads_total` | counter | `result`: `ok`, `refused` |

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use switchyard_mqtt::ListenerHandle;

/// Reads an MQTT listener's counters on each scrape.
#[derive(Debug)]
pub struct MqttCollector {
    pub listener: ListenerHandle,
}

/// One counter family split by `label`.
fn counter_by(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        ConstCounter::new(*n).encode(family.encode_family(&[(label, *value)])?)?;
    }
    Ok(())
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    n: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(n);
    metric.encode(e.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for MqttCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.listener.totals();
        counter(
            &mut e,
            "switchyard_mqtt_connections_accepted",
            "MQTT connections accepted.",
            s.accepted,
        )?;
        let open = ConstGauge::new(s.open as f64);
        open.encode(e.encode_descriptor(
            "switchyard_mqtt_connections_open",
            "MQTT connections open now.",
            None,
            open.metric_type(),
        )?)?;
        counter(
            &mut e,
            "switchyard_mqtt_auth_accepted",
            "MQTT logins the password file accepted.",
            s.auth.accepted,
        )?;
        let auth = s.auth.refused_by_reason;
        counter_by(
            &mut e,
            "switchyard_mqtt_auth_refused",
            "MQTT logins refused, by reason (CONNACK 5: no user name; 4: bad user name or password).",
            "reason",
            &[
                ("no_user_name", auth.no_user_name),
                ("bad_user_name_or_password", auth.bad_user_name_or_password),
            ],
        )?;
        let acl = s.acl.refused_by_reason;
        counter_by(
            &mut e,
            "switchyard_mqtt_acl_refused",
            "MQTT permission refusals by the ACL, by reason.",
            "reason",
            &[
                ("subscribe", acl.subscribe),
                ("publish", acl.publish),
                ("will", acl.will),
                ("retained_read", acl.retained_read),
                ("read", acl.read),
            ],
        )?;
        counter(
            &mut e,
            "switchyard_mqtt_revoked_clients",
            "MQTT connections whose user a reload removed from the password file.",
            s.acl.revoked_clients,
        )?;
        counter_by(
            &mut e,
            "switchyard_mqtt_reloads",
            "Reloads of the MQTT password and ACL files (SIGHUP), by result.",
            "result",
            &[("ok", s.reload.reloads), ("refused", s.reload.refused)],
        )
    }
}
