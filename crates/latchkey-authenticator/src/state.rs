//! The state file: the device key and the enrollment, JSON, mode 0600. It is
//! created with that mode (never widened afterwards), replaced atomically
//! through a 0600 file beside it, and refused when others can read it.
//!
//! Default path: `$XDG_CONFIG_HOME/latchkey-authenticator/state.json`, else
//! `$HOME/.config/latchkey-authenticator/state.json`.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::key::DeviceKey;
use crate::sys;
use crate::totp::TotpParams;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushCredentials {
    pub service: String,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device's own identifier (the `iss` of its challenge responses).
    pub identifier: String,
    pub name: String,
    pub push_credentials: PushCredentials,
    /// The device key, PKCS#8 DER in standard base64.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The device account ID (`dev_…`).
    pub id: String,
    pub user_id: String,
    /// The device account token (secret).
    pub token: String,
    /// The device API's base URL (`{issuer}appliance-mfa`), no trailing slash.
    pub base_url: String,
    /// The label the server gave (`issuer` of the enrollment answer).
    pub issuer: String,
    /// The account the URI named (the user's email).
    pub account: String,
    pub totp: TotpParams,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub device: Device,
    pub enrollment: Enrollment,
}

impl State {
    pub fn key(&self) -> Result<DeviceKey, Error> {
        let der = STANDARD
            .decode(&self.device.key)
            .map_err(|_| Error::new("the state file's device key is not base64"))?;
        DeviceKey::from_pkcs8(&der)
    }

    /// The tenant's issuer, `https://host/`: the base URL less `appliance-mfa`.
    pub fn issuer_url(&self) -> String {
        issuer_of(&self.enrollment.base_url)
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("{}/api/{path}", self.enrollment.base_url)
    }
}

/// `{issuer}appliance-mfa` → `{issuer}` (with its trailing slash).
pub fn issuer_of(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let base = base.strip_suffix("/appliance-mfa").unwrap_or(base);
    format!("{base}/")
}

pub fn encode_key(key: &DeviceKey) -> String {
    STANDARD.encode(key.pkcs8())
}

/// The state path: `--state`, else the documented default.
pub fn path(explicit: Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(Error::new(
                    "neither XDG_CONFIG_HOME nor HOME is set: give --state",
                ));
            }
        },
    };
    Ok(config.join("latchkey-authenticator").join("state.json"))
}

pub fn load(path: &Path) -> Result<State, Error> {
    let shown = path.display();
    let metadata = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::new(format!("no enrollment at {shown}: run `enroll` first"))
        }
        _ => Error::new(format!("cannot read {shown}: {e}")),
    })?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(Error::new(format!(
            "{shown} can be read by other users; it holds the device key: `chmod 600` it"
        )));
    }
    let text = fs::read(path).map_err(|e| Error::new(format!("cannot read {shown}: {e}")))?;
    let state: State = serde_json::from_slice(&text)
        .map_err(|e| Error::new(format!("{shown} is not a state file: {e}")))?;
    if state.version != VERSION {
        return Err(Error::new(format!(
            "{shown} has version {}, expected {VERSION}",
            state.version
        )));
    }
    Ok(state)
}

/// Writes a new enrollment; refuses to replace one unless `force`.
pub fn create(path: &Path, state: &State, force: bool) -> Result<(), Error> {
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(Error::new(format!(
            "{} already holds an enrollment: give --force to replace it, or another --state",
            path.display()
        )));
    }
    replace(path, state)
}

/// Replaces the state file atomically with a 0600 file written beside it.
pub fn replace(path: &Path, state: &State) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", dir.display())))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::new(format!("{} is not a file path", path.display())))?;
    let mut temp_name = file_name.to_os_string();
    temp_name.push(format!(".{}.tmp", sys::hex(&sys::random::<6>()?)));
    let temp = dir.join(temp_name);
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::new(format!("cannot encode the state: {e}")))?;
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(&json)?;
            file.write_all(b"\n")?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(Error::new(format!("cannot write {}: {e}", path.display())));
    }
    Ok(())
}

pub fn remove(path: &Path) -> Result<(), Error> {
    fs::remove_file(path).map_err(|e| Error::new(format!("cannot delete {}: {e}", path.display())))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::totp::Algorithm;

    pub(crate) fn sample(key: &DeviceKey) -> State {
        State {
            version: VERSION,
            device: Device {
                identifier: "latchkey-authenticator-1".into(),
                name: "laptop".into(),
                push_credentials: PushCredentials {
                    service: "FCM".into(),
                    token: "push-1".into(),
                },
                key: encode_key(key),
            },
            enrollment: Enrollment {
                id: "dev_abc".into(),
                user_id: "auth0|u1".into(),
                token: "device-token".into(),
                base_url: "http://localhost:3000/appliance-mfa".into(),
                issuer: "Acme".into(),
                account: "ada@example.com".into(),
                totp: TotpParams::new("JBSWY3DPEHPK3PXP", Algorithm::Sha1, 6, 30).unwrap(),
            },
        }
    }

    #[test]
    fn written_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.json");
        let key = DeviceKey::generate().unwrap();
        let state = sample(&key);
        create(&path, &state, false).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let back = load(&path).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.key().unwrap().jwk(), key.jwk());
        assert_eq!(back.issuer_url(), "http://localhost:3000/");
        assert_eq!(
            back.api_url("enroll"),
            "http://localhost:3000/appliance-mfa/api/enroll"
        );
        // Nothing else is left beside it.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn an_existing_enrollment_is_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let key = DeviceKey::generate().unwrap();
        let first = sample(&key);
        create(&path, &first, false).unwrap();
        let mut second = first.clone();
        second.enrollment.id = "dev_other".into();
        let err = create(&path, &second, false).unwrap_err();
        assert!(err.message().contains("--force"), "{err}");
        assert_eq!(load(&path).unwrap().enrollment.id, "dev_abc");
        create(&path, &second, true).unwrap();
        assert_eq!(load(&path).unwrap().enrollment.id, "dev_other");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        create(&path, &sample(&DeviceKey::generate().unwrap()), false).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&path).unwrap_err().message().contains("chmod 600"));
        let missing = load(&dir.path().join("none.json")).unwrap_err();
        assert!(missing.message().contains("enroll"), "{missing}");
    }

    #[test]
    fn the_issuer_is_the_base_url_less_appliance_mfa() {
        assert_eq!(
            issuer_of("https://a.example/appliance-mfa"),
            "https://a.example/"
        );
        assert_eq!(
            issuer_of("https://a.example/t1/appliance-mfa/"),
            "https://a.example/t1/"
        );
        assert_eq!(issuer_of("https://a.example"), "https://a.example/");
    }
}
