//! `switchyard passwd`: creates and updates password files in Mosquitto's format, as `mosquitto_passwd`
//! does, for `switchyard serve --mqtt-password-file` and for Mosquitto itself.
//!
//! `switchyard passwd [-c] FILE USER` asks for the password (twice, without echo, on a terminal; one
//! line of standard input otherwise), `-b FILE USER PASSWORD` takes it as an argument, `-D FILE USER`
//! deletes the user. Entries are `$7$` (PBKDF2-SHA512, 101 iterations, a random 12-byte salt). The
//! file is written whole to a temporary file beside it, mode 0600, then renamed over it, so a reader
//! never sees half a file. Other lines (users, comments) are kept as they were.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use switchyard_mqtt::{PasswordFile, PasswordHash};

/// Options of `switchyard passwd`.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswdArgs {
    /// Create FILE anew (replacing it if it exists) with USER as its only user.
    #[arg(short = 'c', conflicts_with = "delete")]
    pub create: bool,
    /// Batch mode: the password is the third argument (other local users may see it in the process
    /// list; prefer standard input).
    #[arg(short = 'b', conflicts_with = "delete", requires = "password")]
    pub batch: bool,
    /// Delete USER from FILE.
    #[arg(short = 'D')]
    pub delete: bool,
    /// The password file (Mosquitto's format).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The user name (no `:`, no control characters).
    #[arg(value_name = "USER")]
    pub user: String,
    /// The password, with -b only.
    #[arg(value_name = "PASSWORD")]
    pub password: Option<String>,
}

impl PasswdArgs {
    /// The checks clap cannot make alone (see `Cli::check`).
    pub fn check(&self) -> Result<(), String> {
        if self.password.is_some() && !self.batch {
            return Err(
                "a PASSWORD argument needs -b (without it the password is read from standard input)"
                    .into(),
            );
        }
        check_user(&self.user)
    }
}

fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("the user name is empty".into());
    }
    if user.contains(':') || user.chars().any(char::is_control) {
        return Err(format!(
            "the user name {:?} has a `:` or a control character, which a password file cannot hold",
            user
        ));
    }
    if user.len() > usize::from(u16::MAX) {
        return Err("the user name is longer than MQTT's 65535 bytes".into());
    }
    Ok(())
}

/// Runs `switchyard passwd`.
pub fn run(args: PasswdArgs) -> anyhow::Result<ExitCode> {
    let existing = if args.create {
        String::new()
    } else {
        match std::fs::read_to_string(&args.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.delete => {
                bail!(
                    "{} does not exist: use -c to create it",
                    args.file.display()
                )
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", args.file.display()));
            }
        }
    };
    // A file that does not parse is not rewritten: its line number says what to fix.
    let parsed = PasswordFile::parse(&existing)?;
    let text = if args.delete {
        if parsed.get(&args.user).is_none() {
            bail!("user {:?} is not in {}", args.user, args.file.display());
        }
        with_user(&existing, &args.user, None)
    } else {
        let password = match &args.password {
            Some(password) => password.clone(),
            None => read_password()?,
        };
        if password.is_empty() {
            bail!("the password is empty");
        }
        let hash = PasswordHash::new(password.as_bytes())
            .map_err(|e| anyhow::anyhow!("no random salt: {e}"))?;
        with_user(&existing, &args.user, Some(&hash))
    };
    write_private_atomic(&args.file, &text)?;
    Ok(ExitCode::SUCCESS)
}

/// `text` with `user`'s line replaced by `hash` (appended if new), or removed when `hash` is `None`.
fn with_user(text: &str, user: &str, hash: Option<&PasswordHash>) -> String {
    let mut out = String::with_capacity(text.len() + 128);
    let mut replaced = false;
    for line in text.lines() {
        let is_user =
            !line.starts_with('#') && line.split_once(':').is_some_and(|(name, _)| name == user);
        if !is_user {
            out.push_str(line);
            out.push('\n');
        } else if let Some(hash) = hash
            && !replaced
        {
            out.push_str(&format!("{user}:{hash}\n"));
            replaced = true;
        }
    }
    if let Some(hash) = hash
        && !replaced
    {
        out.push_str(&format!("{user}:{hash}\n"));
    }
    out
}

/// Writes `text` to a temporary file beside `path` with mode 0600, then renames it over `path`.
fn write_private_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".switchyard-passwd")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The password from standard input: asked twice without echo on a terminal, else one line.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        return Ok(line.strip_suffix('\r').unwrap_or(line).to_string());
    }
    let first = prompt_hidden("Password: ")?;
    let second = prompt_hidden("Reenter password: ")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// Reads a line from the terminal with echo off (raw mode), restoring the terminal after.
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    let mut stderr = std::io::stderr();
    write!(stderr, "{prompt}")?;
    stderr.flush()?;
    crossterm::terminal::enable_raw_mode().context("turning the terminal's echo off")?;
    let mut password = String::new();
    let result = loop {
        match event::read() {
            Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => match key.code {
                KeyCode::Enter => break Ok(()),
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    break Err(anyhow::anyhow!("interrupted"));
                }
                KeyCode::Char(c) => password.push(c),
                KeyCode::Backspace => {
                    password.pop();
                }
                _ => {}
            },
            Ok(_) => {}
            Err(e) => break Err(e.into()),
        }
    };
    let _ = crossterm::terminal::disable_raw_mode();
    writeln!(stderr)?;
    result.map(|()| password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_replaced_in_place_appended_or_removed_and_other_lines_kept() {
        let hash = PasswordHash::pbkdf2_with(b"pw", 101, b"0123456789ab".to_vec());
        let text = "# users\nalice:old\nbob:old\n";
        assert_eq!(
            with_user(text, "alice", Some(&hash)),
            format!("# users\nalice:{hash}\nbob:old\n")
        );
        assert_eq!(
            with_user(text, "carol", Some(&hash)),
            format!("# users\nalice:old\nbob:old\ncarol:{hash}\n")
        );
        assert_eq!(with_user(text, "bob", None), "# users\nalice:old\n");
        // A user whose name is a prefix of another's is its own line.
        assert_eq!(with_user("al:x\nalice:y\n", "al", None), "alice:y\n");
    }

    #[test]
    fn user_names_a_file_cannot_hold_are_refused() {
        assert!(check_user("alice").is_ok());
        assert!(check_user("").is_err());
        assert!(check_user("a:b").is_err());
        assert!(check_user("a\nb").is_err());
    }
}
