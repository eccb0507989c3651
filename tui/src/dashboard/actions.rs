//! Carrying out a [`Command`] through the [`BrokerLink`], and logging what came of it.

use std::path::{Path, PathBuf};

use switchyard::SubscriptionId;

use super::app::{App, Command, Level};
use super::link::{BrokerLink, ConsumerState, SubscribeRequest};
use crate::error_text::one_line;

/// Does what `command` asks and logs the result (errors included: nothing here fails the dashboard).
pub fn execute(app: &mut App, command: Command, link: &mut dyn BrokerLink) {
    match command {
        Command::Publish(request) => {
            let topic = request.topic.clone();
            // Success is logged when the publishing finishes (a `LinkEvent::Published`).
            if let Err(e) = link.publish(request) {
                app.log(
                    Level::Error,
                    format!("publish to {topic} failed: {}", one_line(&e)),
                );
            }
        }
        Command::Subscribe(request) => subscribe(app, &request, link),
        Command::Unsubscribe { id, name } => match link.unsubscribe(id) {
            Ok(()) => app.log(Level::Info, format!("unsubscribed {name}")),
            Err(e) => app.log(
                Level::Error,
                format!("unsubscribe {name} failed: {}", one_line(&e)),
            ),
        },
        Command::SetPaused { id, name, paused } => set_paused(app, id, &name, paused, link),
        Command::Export => match export(app) {
            Ok(path) => app.log(
                Level::Info,
                format!("exported snapshot to {}", path.display()),
            ),
            Err(e) => app.log(Level::Error, format!("export failed: {}", one_line(&e))),
        },
        Command::SetDemo(on) => match link.set_demo(on) {
            Ok(()) => {
                app.demo_changed(on);
                app.log(
                    Level::Info,
                    if on {
                        "demo traffic started"
                    } else {
                        "demo traffic stopped"
                    },
                );
            }
            Err(e) => app.log(Level::Error, format!("demo traffic: {}", one_line(&e))),
        },
        Command::Explain(topic) => {
            let result = link.explain(&topic).map_err(|e| format!("{e:#}"));
            app.explained(topic, result);
        }
    }
}

/// Subscribes as the form asked, selects the new row and logs it.
fn subscribe(app: &mut App, request: &SubscribeRequest, link: &mut dyn BrokerLink) {
    match link.subscribe(request) {
        Ok(id) => {
            let name = request.name.clone().unwrap_or_else(|| format!("s{id}"));
            app.log(
                Level::Info,
                format!(
                    "subscribed {name} to {} (capacity {}, {})",
                    request.filter, request.capacity, request.policy
                ),
            );
            app.subscribed(id);
        }
        Err(e) => app.log(
            Level::Error,
            format!("subscribe to {} failed: {}", request.filter, one_line(&e)),
        ),
    }
}

/// Pauses or resumes the consumer of `id` and logs it.
fn set_paused(
    app: &mut App,
    id: SubscriptionId,
    name: &str,
    paused: bool,
    link: &mut dyn BrokerLink,
) {
    match link.set_paused(id, paused) {
        Ok(()) => {
            let what = if paused {
                "paused the consumer of"
            } else {
                "resumed the consumer of"
            };
            app.log(Level::Info, format!("{what} {name}"));
            app.consumer_changed(
                id,
                if paused {
                    ConsumerState::Pausing
                } else {
                    ConsumerState::Running
                },
            );
        }
        Err(e) => app.log(
            Level::Error,
            format!("pause/resume {name} failed: {}", one_line(&e)),
        ),
    }
}

/// Writes the snapshot on screen to `switchyard-<taken_at>.json` in the export directory, never
/// overwriting an earlier export.
fn export(app: &App) -> anyhow::Result<PathBuf> {
    let stamp: String = app
        .snapshot()
        .taken_at
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stamp = if stamp.is_empty() {
        "start".to_string()
    } else {
        stamp
    };
    let path = unused_path(app.export_dir(), &stamp);
    crate::export::write_json_atomic(&path, app.snapshot())?;
    Ok(path)
}

fn unused_path(dir: &Path, stamp: &str) -> PathBuf {
    let first = dir.join(format!("switchyard-{stamp}.json"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| dir.join(format!("switchyard-{stamp}-{n}.json")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}
