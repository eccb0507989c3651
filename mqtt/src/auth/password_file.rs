//! Mosquitto's password file: one `user:hash` a line, as `mosquitto_passwd` writes it.
//!
//! Two hash kinds are read:
//! - `$7$<iterations>$<base64 salt>$<base64 hash>`: PBKDF2-HMAC-SHA512 of the password with the salt
//!   (what `mosquitto_passwd` writes since Mosquitto 2.0, 101 iterations, a 12-byte salt, a 64-byte
//!   hash);
//! - `$6$<base64 salt>$<base64 hash>`: SHA-512 of the password followed by the salt, one round (older
//!   files).
//!
//! Empty lines and lines starting with `#` are skipped. Anything else that does not parse (no `:`, an
//! unknown hash kind, bad base64, a plain-text password, a user listed twice) refuses the whole file
//! with its line number: a half-read password file would lock users out, or worse.
//!
//! [`PasswordFile::verify`] compares in constant time ([`subtle`]) and costs the same for a user that
//! is not in the file: the password is hashed against a dummy entry with the file's own parameters.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha512};
use subtle::ConstantTimeEq as _;

/// The iterations `mosquitto_passwd` uses for `$7$` hashes, and [`PasswordHash::new`] too.
pub const DEFAULT_ITERATIONS: u32 = 101;
/// The salt length `mosquitto_passwd` uses, in bytes.
pub const SALT_LEN: usize = 12;
/// Iterations above this are refused: one CONNECT would cost seconds of CPU.
const MAX_ITERATIONS: u32 = 1_000_000;

/// One user's password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        /// PBKDF2 iterations.
        iterations: u32,
        /// The salt (decoded).
        salt: Vec<u8>,
        /// The derived key (decoded), usually 64 bytes.
        hash: Vec<u8>,
    },
    /// `$6$`: SHA-512 of password then salt, once.
    Sha512 {
        /// The salt (decoded).
        salt: Vec<u8>,
        /// The digest (decoded).
        hash: Vec<u8>,
    },
}

impl fmt::Debug for PasswordHash {
    // Hashes stay out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "PasswordHash($7$, {iterations} iterations)")
            }
            PasswordHash::Sha512 { .. } => write!(f, "PasswordHash($6$)"),
        }
    }
}

impl fmt::Display for PasswordHash {
    /// The hash as a password file holds it (after `user:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                BASE64.encode(salt),
                BASE64.encode(hash)
            ),
            PasswordHash::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", BASE64.encode(salt), BASE64.encode(hash))
            }
        }
    }
}

impl PasswordHash {
    /// A new `$7$` hash of `password` with [`DEFAULT_ITERATIONS`] and a random [`SALT_LEN`]-byte salt,
    /// as `mosquitto_passwd` makes it.
    pub fn new(password: &[u8]) -> Result<Self, getrandom::Error> {
        let mut salt = vec![0; SALT_LEN];
        getrandom::fill(&mut salt)?;
        Ok(Self::pbkdf2_with(password, DEFAULT_ITERATIONS, salt))
    }

    /// A `$7$` hash with the given iterations and salt.
    pub fn pbkdf2_with(password: &[u8], iterations: u32, salt: Vec<u8>) -> Self {
        let mut hash = vec![0; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(password, &salt, iterations, &mut hash);
        PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        }
    }

    /// Parses the part after `user:`. The error says what is wrong, without the line number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let decode = |what: &str, part: &str| {
            BASE64
                .decode(part)
                .map_err(|e| format!("the {what} is not base64 ({e})"))
        };
        if let Some(rest) = text.strip_prefix("$7$") {
            let parts: Vec<&str> = rest.split('$').collect();
            let [iterations, salt, hash] = parts[..] else {
                return Err("a $7$ hash is $7$<iterations>$<base64 salt>$<base64 hash>".into());
            };
            let iterations: u32 = iterations
                .parse()
                .ok()
                .filter(|n| (1..=MAX_ITERATIONS).contains(n))
                .ok_or_else(|| {
                    format!(
                        "the iterations `{iterations}` are not a number from 1 to {MAX_ITERATIONS}"
                    )
                })?;
            let salt = decode("salt", salt)?;
            let hash = decode("hash", hash)?;
            if salt.is_empty() || hash.is_empty() || hash.len() > 64 {
                return Err(
                    "the salt is empty, or the hash is empty or longer than 64 bytes".into(),
                );
            }
            Ok(PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            })
        } else if let Some(rest) = text.strip_prefix("$6$") {
            let parts: Vec<&str> = rest.split('$').collect();
            let [salt, hash] = parts[..] else {
                return Err("a $6$ hash is $6$<base64 salt>$<base64 hash>".into());
            };
            let salt = decode("salt", salt)?;
            let hash = decode("hash", hash)?;
            if salt.is_empty() || hash.len() != 64 {
                return Err("the salt is empty, or the hash is not 64 bytes".into());
            }
            Ok(PasswordHash::Sha512 { salt, hash })
        } else {
            Err(
                "not a $7$ or $6$ hash (a plain-text password? hash the file with \
                 `mosquitto_passwd -U FILE` or set passwords with `switchyard passwd`)"
                    .into(),
            )
        }
    }

    /// Whether `password` matches, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        bool::from(self.compute(password).ct_eq(self.expected()))
    }

    /// The hash `password` gives with this entry's parameters.
    fn compute(&self, password: &[u8]) -> Vec<u8> {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                out
            }
            PasswordHash::Sha512 { salt, .. } => {
                let mut digest = Sha512::new();
                digest.update(password);
                digest.update(salt);
                digest.finalize().to_vec()
            }
        }
    }

    fn expected(&self) -> &[u8] {
        match self {
            PasswordHash::Pbkdf2Sha512 { hash, .. } | PasswordHash::Sha512 { hash, .. } => hash,
        }
    }
}

/// A password file that did not parse or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordFileError {
    /// The file could not be read.
    #[error("cannot read password file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A line did not parse.
    #[error("password file line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// The users and their hashes, read from a Mosquitto password file.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordFile {
    users: HashMap<String, PasswordHash>,
    /// Hashed against when the user is unknown, so that a failed attempt costs the same either way.
    dummy: PasswordHash,
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordFile({} users)", self.users.len())
    }
}

impl PasswordFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, PasswordFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| PasswordFileError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// Parses a file's text; the error names the first bad line.
    pub fn parse(text: &str) -> Result<Self, PasswordFileError> {
        let mut users = HashMap::new();
        let mut first: Option<PasswordHash> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let bad = |message: String| PasswordFileError::Line { line, message };
            let trimmed = raw.trim_end_matches(['\r', ' ', '\t']);
            if trimmed.trim_start().is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = trimmed.split_once(':') else {
                return Err(bad("expected user:hash".into()));
            };
            if user.is_empty() {
                return Err(bad("the user name is empty".into()));
            }
            let hash = PasswordHash::parse(hash).map_err(bad)?;
            if users.contains_key(user) {
                return Err(bad(format!("user `{user}` is listed twice")));
            }
            first.get_or_insert_with(|| hash.clone());
            users.insert(user.to_string(), hash);
        }
        Ok(Self {
            users,
            dummy: dummy_like(first.as_ref()),
        })
    }

    /// The users, in no particular order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The hash of `user`, if listed.
    pub fn get(&self, user: &str) -> Option<&PasswordHash> {
        self.users.get(user)
    }

    /// How many users the file lists.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file lists no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` is listed with `password`. Slow on purpose (PBKDF2): call it off async
    /// workers. An unknown user costs the same as a wrong password: the password is hashed against a
    /// dummy entry with the parameters of the file's first entry.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                // Same work, result thrown away.
                let _ = self.dummy.verify(password);
                false
            }
        }
    }
}

/// A hash no password matches in practice, with the same parameters (so the same cost) as `like`.
fn dummy_like(like: Option<&PasswordHash>) -> PasswordHash {
    match like {
        Some(PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        }) => PasswordHash::Pbkdf2Sha512 {
            iterations: *iterations,
            salt: vec![0x5a; salt.len()],
            hash: vec![0xa5; hash.len()],
        },
        Some(PasswordHash::Sha512 { salt, .. }) => PasswordHash::Sha512 {
            salt: vec![0x5a; salt.len()],
            hash: vec![0xa5; 64],
        },
        None => PasswordHash::Pbkdf2Sha512 {
            iterations: DEFAULT_ITERATIONS,
            salt: vec![0x5a; SALT_LEN],
            hash: vec![0xa5; 64],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `$7$` entry for `password` with Mosquitto's parameters and a fixed salt.
    fn pbkdf2_of(password: &str) -> String {
        PasswordHash::pbkdf2_with(password.as_bytes(), 101, b"0123456789ab".to_vec()).to_string()
    }

    fn sha512_of(password: &str, salt: &[u8]) -> String {
        let mut d = Sha512::new();
        d.update(password.as_bytes());
        d.update(salt);
        format!("$6${}${}", BASE64.encode(salt), BASE64.encode(d.finalize()))
    }

    #[test]
    fn pbkdf2_matches_the_rfc_style_reference_vector() {
        // PBKDF2-HMAC-SHA512("password", "salt", 1), first 16 bytes, from RFC 6070-style test vectors.
        let PasswordHash::Pbkdf2Sha512 { hash, .. } =
            PasswordHash::pbkdf2_with(b"password", 1, b"salt".to_vec())
        else {
            unreachable!()
        };
        assert_eq!(hash[..8], [0x86, 0x7f, 0x70, 0xcf, 0x1a, 0xde, 0x02, 0xcf]);
    }

    #[test]
    fn both_hash_kinds_verify_the_right_password_only() {
        let text = format!(
            "# comment\n\nalice:{}\nbob:{}\r\n",
            pbkdf2_of("secret"),
            sha512_of("hunter2", b"salty")
        );
        let file = PasswordFile::parse(&text).unwrap();
        assert_eq!(file.len(), 2);
        assert!(file.verify("alice", b"secret"));
        assert!(!file.verify("alice", b"secret "));
        assert!(!file.verify("alice", b""));
        assert!(file.verify("bob", b"hunter2"));
        assert!(!file.verify("bob", b"hunter3"));
        assert!(!file.verify("carol", b"secret"));
        assert!(!file.verify("Alice", b"secret"));
    }

    #[test]
    fn a_hash_round_trips_through_its_text() {
        let hash = PasswordHash::new(b"pw").unwrap();
        let text = hash.to_string();
        assert!(text.starts_with("$7$101$"), "{text}");
        assert_eq!(PasswordHash::parse(&text).unwrap(), hash);
        assert!(hash.verify(b"pw"));
        let PasswordHash::Pbkdf2Sha512 { salt, hash, .. } = &hash else {
            unreachable!()
        };
        assert_eq!((salt.len(), hash.len()), (SALT_LEN, 64));
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        let good = pbkdf2_of("x");
        let cases = [
            (format!("a:{good}\nnocolon\n"), 2, "user:hash"),
            (format!("\n\n:{good}\n"), 3, "user name is empty"),
            ("a:plaintext\n".to_string(), 1, "plain-text"),
            ("a:$7$abc$AAAA$AAAA\n".to_string(), 1, "iterations"),
            ("a:$7$0$AAAA$AAAA\n".to_string(), 1, "iterations"),
            ("a:$7$101$!!!$AAAA\n".to_string(), 1, "salt is not base64"),
            ("a:$7$101$AAAA\n".to_string(), 1, "$7$<iterations>"),
            ("# c\na:$6$AAAA$AAAA\n".to_string(), 2, "not 64 bytes"),
            (format!("a:{good}\nb:{good}\na:{good}\n"), 3, "listed twice"),
        ];
        for (text, line, words) in cases {
            let err = PasswordFile::parse(&text).unwrap_err();
            let PasswordFileError::Line { line: got, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(*got, line, "{text:?}: {err}");
            assert!(err.to_string().contains(words), "{text:?}: {err}");
            assert!(err.to_string().contains(&format!("line {line}")), "{err}");
        }
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let err = PasswordFile::load(Path::new("/nonexistent/pw")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/pw"), "{err}");
    }

    #[test]
    fn an_unknown_user_is_hashed_with_the_same_parameters_as_a_listed_one() {
        // The cost of a check is the hash's kind, iterations and lengths: an unknown user is hashed
        // against a dummy with exactly the first entry's, so it does the same work (no timing is
        // asserted: the machines that run the tests are shared and noisy).
        let shape = |h: &PasswordHash| match h {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => (7, *iterations, salt.len(), hash.len()),
            PasswordHash::Sha512 { salt, hash } => (6, 1, salt.len(), hash.len()),
        };
        for first in [
            PasswordHash::pbkdf2_with(b"pw", 20_000, b"0123456789ab".to_vec()),
            PasswordHash::pbkdf2_with(b"pw", 101, b"0123456789abcdef".to_vec()),
        ] {
            let file = PasswordFile::parse(&format!("alice:{first}\nbob:{first}\n")).unwrap();
            assert_eq!(shape(&file.dummy), shape(&first));
            assert_ne!(file.dummy, first, "no password of the file opens the dummy");
            assert!(!file.verify("mallory", b"pw"), "an unknown user is refused");
            assert!(file.verify("alice", b"pw"));
        }
    }
}
