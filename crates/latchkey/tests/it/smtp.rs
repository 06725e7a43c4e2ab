//! Email delivery against a real (minimal) SMTP server on 127.0.0.1.
//!
//! The server speaks enough RFC 5321 for lettre's client: the 220 greeting,
//! EHLO/HELO, AUTH PLAIN and AUTH LOGIN (when started with credentials),
//! MAIL FROM, RCPT TO, DATA (dot-unstuffing, ends at CRLF.CRLF), RSET, NOOP
//! and QUIT. It can also speak TLS, with a certificate from a CA made for the
//! test: implicit TLS from the first byte, or plain with STARTTLS advertised.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use latchkey::adapters::delivery::email::{EmailMessage, send_email};
use latchkey::services::delivery::{DeliveryError, MapSecrets};
use latchkey::tenant::model::{SmtpSecurity, SmtpSettings};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// One message as the server received it: the envelope and the raw DATA
/// (dot-unstuffed, CRLF line endings, without the terminating `.` line).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// Whether the message came over TLS.
    pub tls: bool,
}

/// A certificate authority made for one test, and a server certificate it
/// issued for 127.0.0.1.
pub struct TestCa {
    /// The CA certificate (PEM), for the client's trust.
    pub pem: String,
    acceptor: TlsAcceptor,
}

impl TestCa {
    pub fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "latchkey test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .unwrap();
        Self {
            pem: ca.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum TlsMode {
    Starttls,
    Implicit,
}

#[derive(Clone)]
struct Config {
    /// `(username, password)` when AUTH is required.
    credentials: Option<(String, String)>,
    /// The mechanisms advertised after `AUTH` in the EHLO answer.
    mechanisms: &'static str,
    tls: Option<(TlsMode, TlsAcceptor)>,
}

/// A real SMTP server on 127.0.0.1, stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    /// A server that accepts mail without authentication.
    pub async fn start() -> Self {
        Self::spawn(Config {
            credentials: None,
            mechanisms: "",
            tls: None,
        })
        .await
    }

    /// A server that advertises STARTTLS (with `ca`'s certificate) and
    /// accepts mail only once the connection is secure.
    pub async fn start_with_starttls(ca: &TestCa) -> Self {
        Self::spawn(Config {
            credentials: None,
            mechanisms: "",
            tls: Some((TlsMode::Starttls, ca.acceptor.clone())),
        })
        .await
    }

    /// A server speaking TLS (with `ca`'s certificate) from the first byte.
    pub async fn start_with_implicit_tls(ca: &TestCa) -> Self {
        Self::spawn(Config {
            credentials: None,
            mechanisms: "",
            tls: Some((TlsMode::Implicit, ca.acceptor.clone())),
        })
        .await
    }

    /// A server that advertises `AUTH PLAIN LOGIN` and accepts mail only
    /// after a successful AUTH with these credentials.
    pub async fn start_with_auth(user: &str, password: &str) -> Self {
        Self::spawn(Config {
            credentials: Some((user.to_owned(), password.to_owned())),
            mechanisms: "PLAIN LOGIN",
            tls: None,
        })
        .await
    }

    /// Like [`SmtpServer::start_with_auth`], advertising only `AUTH LOGIN`.
    pub async fn start_with_login_auth(user: &str, password: &str) -> Self {
        Self::spawn(Config {
            credentials: Some((user.to_owned(), password.to_owned())),
            mechanisms: "LOGIN",
            tls: None,
        })
        .await
    }

    async fn spawn(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let mails = Arc::clone(&mails);
            async move {
                let mut sessions = tokio::task::JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    sessions.spawn(session(stream, config.clone(), Arc::clone(&mails)));
                }
            }
        });
        Self { port, mails, task }
    }

    /// The messages received so far.
    pub async fn messages(&self) -> Vec<ReceivedMail> {
        self.mails.lock().await.clone()
    }

    /// Waits until `n` messages have arrived (at most 10 s, then panics).
    pub async fn wait_for(&self, n: usize) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mails = self.messages().await;
            if mails.len() >= n {
                return mails;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("expected {n} messages, received {}", mails.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A port where connections are accepted but nothing is ever said.
pub async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Conn {
    reader: BufReader<Box<dyn Stream>>,
    tls: bool,
}

impl Conn {
    async fn reply(&mut self, line: &str) -> std::io::Result<()> {
        let writer = self.reader.get_mut();
        writer.write_all(line.as_bytes()).await?;
        writer.write_all(b"\r\n").await?;
        writer.flush().await
    }

    /// Replaces the plain stream by a TLS one (nothing is buffered: the
    /// client waits for the 220 before its handshake).
    async fn upgrade(&mut self, acceptor: &TlsAcceptor) -> std::io::Result<()> {
        let placeholder: Box<dyn Stream> = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.reader, BufReader::new(placeholder)).into_inner();
        let secure = acceptor.accept(plain).await?;
        self.reader = BufReader::new(Box::new(secure));
        self.tls = true;
        Ok(())
    }

    /// One line without its CRLF; `None` at end of stream.
    async fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf).await? == 0 {
            return Ok(None);
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }
}

async fn session(stream: TcpStream, config: Config, mails: Arc<Mutex<Vec<ReceivedMail>>>) {
    let mut conn = Conn {
        reader: BufReader::new(Box::new(stream)),
        tls: false,
    };
    if let Some((TlsMode::Implicit, acceptor)) = &config.tls
        && conn.upgrade(acceptor).await.is_err()
    {
        return;
    }
    // A broken connection just ends the session.
    let _ = run_session(&mut conn, &config, &mails).await;
}

async fn run_session(
    conn: &mut Conn,
    config: &Config,
    mails: &Mutex<Vec<ReceivedMail>>,
) -> std::io::Result<()> {
    conn.reply("220 localhost ESMTP test server").await?;
    let mut authenticated = config.credentials.is_none();
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();

    while let Some(line) = conn.line().await? {
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim().to_owned()),
            None => (line.trim().to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" => {
                let mut lines = vec!["250-localhost greets you".to_owned()];
                if config.credentials.is_some() {
                    lines.push(format!("250-AUTH {}", config.mechanisms));
                }
                if matches!(config.tls, Some((TlsMode::Starttls, _))) && !conn.tls {
                    lines.push("250-STARTTLS".to_owned());
                }
                lines.push("250-8BITMIME".to_owned());
                lines.push("250 SMTPUTF8".to_owned());
                conn.reply(&lines.join("\r\n")).await?;
            }
            "HELO" => conn.reply("250 localhost").await?,
            "STARTTLS" => match &config.tls {
                Some((TlsMode::Starttls, acceptor)) if !conn.tls => {
                    conn.reply("220 2.0.0 Ready to start TLS").await?;
                    conn.upgrade(acceptor).await?;
                    // RFC 3207: the session starts over.
                    from = None;
                    to.clear();
                }
                _ => conn.reply("502 5.5.1 STARTTLS not available").await?,
            },
            "MAIL" if matches!(config.tls, Some((TlsMode::Starttls, _))) && !conn.tls => {
                conn.reply("530 5.7.0 Must issue a STARTTLS command first")
                    .await?
            }
            "AUTH" if config.credentials.is_some() => {
                let ok = authenticate(conn, config, &arg).await?;
                if ok {
                    authenticated = true;
                    conn.reply("235 2.7.0 Authentication successful").await?;
                } else {
                    conn.reply("535 5.7.8 Authentication credentials invalid")
                        .await?;
                }
            }
            "MAIL" if !authenticated => conn.reply("530 5.7.0 Authentication required").await?,
            "MAIL" => match angle_address(&arg, "FROM:") {
                Some(address) => {
                    from = Some(address);
                    to.clear();
                    conn.reply("250 2.1.0 OK").await?;
                }
                None => conn.reply("501 5.5.4 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" if from.is_none() => conn.reply("503 5.5.1 MAIL first").await?,
            "RCPT" => match angle_address(&arg, "TO:") {
                Some(address) => {
                    to.push(address);
                    conn.reply("250 2.1.5 OK").await?;
                }
                None => conn.reply("501 5.5.4 Syntax: RCPT TO:<address>").await?,
            },
            "DATA" if to.is_empty() => conn.reply("503 5.5.1 RCPT first").await?,
            "DATA" => {
                conn.reply("354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = String::new();
                loop {
                    let Some(line) = conn.line().await? else {
                        return Ok(());
                    };
                    if line == "." {
                        break;
                    }
                    let line = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(line);
                    data.push_str("\r\n");
                }
                mails.lock().await.push(ReceivedMail {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                    tls: conn.tls,
                });
                conn.reply("250 2.0.0 OK queued").await?;
            }
            "RSET" => {
                from = None;
                to.clear();
                conn.reply("250 2.0.0 OK").await?;
            }
            "NOOP" => conn.reply("250 2.0.0 OK").await?,
            "QUIT" => {
                conn.reply("221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => conn.reply("502 5.5.2 Command not recognized").await?,
        }
    }
    Ok(())
}

/// Runs an AUTH exchange (`arg` is what followed `AUTH `); true when the
/// credentials match.
async fn authenticate(conn: &mut Conn, config: &Config, arg: &str) -> std::io::Result<bool> {
    let Some((user, password)) = &config.credentials else {
        return Ok(false);
    };
    let (mechanism, initial) = match arg.split_once(' ') {
        Some((m, initial)) => (m.to_ascii_uppercase(), Some(initial.trim().to_owned())),
        None => (arg.to_ascii_uppercase(), None),
    };
    if !config.mechanisms.split(' ').any(|m| m == mechanism) {
        return Ok(false);
    }
    match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(initial) => initial,
                None => {
                    conn.reply("334 ").await?;
                    conn.line().await?.unwrap_or_default()
                }
            };
            // authzid NUL authcid NUL passwd
            let decoded = decode_b64(&response);
            let mut fields = decoded.split('\0');
            let (_authzid, authcid, passwd) = (fields.next(), fields.next(), fields.next());
            Ok(authcid == Some(user.as_str()) && passwd == Some(password.as_str()))
        }
        "LOGIN" => {
            let username = match initial {
                Some(initial) => decode_b64(&initial),
                None => {
                    conn.reply(&format!("334 {}", B64.encode("Username:")))
                        .await?;
                    decode_b64(&conn.line().await?.unwrap_or_default())
                }
            };
            conn.reply(&format!("334 {}", B64.encode("Password:")))
                .await?;
            let passwd = decode_b64(&conn.line().await?.unwrap_or_default());
            Ok(&username == user && &passwd == password)
        }
        _ => Ok(false),
    }
}

fn decode_b64(text: &str) -> String {
    B64.decode(text.trim())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// `FROM:<a@b> SIZE=…` → `a@b`.
fn angle_address(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_owned())
}

// ---------------------------------------------------------------------------
// Reading what was received
// ---------------------------------------------------------------------------

/// A parsed MIME entity: unfolded headers and the raw body.
struct Entity {
    headers: Vec<(String, String)>,
    body: String,
}

impl Entity {
    fn parse(raw: &str) -> Self {
        let (head, body) = match raw.find("\r\n\r\n") {
            Some(at) => (&raw[..at], &raw[at + 4..]),
            None => (raw, ""),
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        Self {
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type, lower-cased, without parameters.
    fn media_type(&self) -> String {
        self.header("Content-Type")
            .unwrap_or("text/plain")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    fn parameter(&self, header: &str, name: &str) -> Option<String> {
        self.header(header)?.split(';').skip(1).find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    }

    /// The leaf entities, depth first.
    fn leaves(self) -> Vec<Entity> {
        if !self.media_type().starts_with("multipart/") {
            return vec![self];
        }
        let Some(boundary) = self.parameter("Content-Type", "boundary") else {
            return vec![self];
        };
        let body = format!("\r\n{}", self.body);
        let delimiter = format!("\r\n--{boundary}");
        body.split(delimiter.as_str())
            .skip(1) // the preamble
            .take_while(|segment| !segment.starts_with("--"))
            .flat_map(|segment| {
                // The rest of the delimiter line (transport padding), then the part.
                let part = segment.split_once("\r\n").map_or("", |(_, part)| part);
                Entity::parse(part).leaves()
            })
            .collect()
    }

    /// The body after its Content-Transfer-Encoding, as UTF-8.
    fn decoded(&self) -> String {
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "base64" => {
                let compact: String = self.body.split_whitespace().collect();
                B64.decode(compact).unwrap()
            }
            "quoted-printable" => decode_quoted_printable(&self.body),
            _ => self.body.clone().into_bytes(),
        };
        String::from_utf8(bytes).unwrap()
    }
}

fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes[i + 1..].starts_with(b"\r\n") => i += 3,
            b'=' if bytes[i + 1..].starts_with(b"\n") => i += 2,
            b'=' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`); the
/// whitespace between two adjacent encoded words is dropped.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending_space = String::new();
    let mut previous_was_word = false;
    for token in value.split_inclusive([' ', '\t']) {
        let word = token.trim_end_matches([' ', '\t']);
        let trailing = &token[word.len()..];
        match decode_encoded_word(word) {
            Some(decoded) => {
                if !previous_was_word {
                    out.push_str(&pending_space);
                }
                out.push_str(&decoded);
                previous_was_word = true;
            }
            None => {
                out.push_str(&pending_space);
                out.push_str(word);
                previous_was_word = false;
            }
        }
        pending_space = trailing.to_owned();
    }
    out.push_str(&pending_space);
    out
}

fn decode_encoded_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = match encoding.to_ascii_lowercase().as_str() {
        "b" => B64.decode(text).ok()?,
        "q" => decode_quoted_printable(&text.replace('_', " ")),
        _ => return None,
    };
    String::from_utf8(bytes).ok()
}

impl ReceivedMail {
    fn part(&self, media_type: &str) -> String {
        let leaf = Entity::parse(&self.data)
            .leaves()
            .into_iter()
            .find(|leaf| leaf.media_type() == media_type)
            .unwrap_or_else(|| panic!("no {media_type} part in:\n{}", self.data));
        leaf.decoded().replace("\r\n", "\n")
    }

    /// The decoded text/plain part (7bit, quoted-printable or base64), with
    /// LF line endings.
    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    /// The decoded text/html part, with LF line endings.
    pub fn html(&self) -> String {
        self.part("text/html")
    }

    /// A top-level header, unfolded, with RFC 2047 encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        Entity::parse(&self.data)
            .header(name)
            .map(decode_encoded_words)
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

fn settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port,
        security: SmtpSecurity::None,
        from: "Latchkey <no-reply@example.com>".to_owned(),
        username: None,
        password_env: None,
        timeout_seconds: 5,
        ca_file: None,
    }
}

fn with_auth(port: u16, user: &str) -> SmtpSettings {
    SmtpSettings {
        username: Some(user.to_owned()),
        password_env: Some("LATCHKEY_SMTP_PASSWORD".to_owned()),
        ..settings(port)
    }
}

fn secrets(password: &str) -> MapSecrets {
    MapSecrets(HashMap::from([(
        "LATCHKEY_SMTP_PASSWORD".to_owned(),
        password.to_owned(),
    )]))
}

fn code_message() -> EmailMessage {
    EmailMessage {
        to: "Ada Lovelace <ada@example.com>".to_owned(),
        subject: "Your verification code".to_owned(),
        text: "Your code is 123456.\nIt expires in 5 minutes.".to_owned(),
        html: "<p>Your code is <b>123456</b>.</p>".to_owned(),
    }
}

#[tokio::test]
async fn delivers_text_and_html_without_auth() {
    let server = SmtpServer::start().await;
    send_email(
        &settings(server.port),
        &code_message(),
        &MapSecrets::default(),
    )
    .await
    .unwrap();

    let mails = server.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "no-reply@example.com");
    assert_eq!(mail.to, vec!["ada@example.com".to_owned()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your verification code")
    );
    assert_eq!(
        mail.header("From").as_deref(),
        Some("Latchkey <no-reply@example.com>")
    );
    assert_eq!(
        mail.header("To").as_deref(),
        Some("\"Ada Lovelace\" <ada@example.com>")
    );
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    assert_eq!(
        mail.text(),
        "Your code is 123456.\nIt expires in 5 minutes."
    );
    assert_eq!(mail.html(), "<p>Your code is <b>123456</b>.</p>");
}

#[tokio::test]
async fn non_ascii_and_leading_dots_survive_the_trip() {
    let server = SmtpServer::start().await;
    let message = EmailMessage {
        to: "zoë@example.com".to_owned(),
        subject: "Votre code ✓ — 123456".to_owned(),
        text: "Bonjour Zoë,\nvotre code est 123456 ✓".to_owned(),
        // ASCII only, so sent as-is: lettre dot-stuffs, the server unstuffs.
        html: "<p>code</p>\n.\n..two dots\n.one dot".to_owned(),
    };
    send_email(&settings(server.port), &message, &MapSecrets::default())
        .await
        .unwrap();

    let mail = &server.wait_for(1).await[0];
    assert!(
        mail.data
            .contains("Content-Transfer-Encoding: quoted-printable"),
        "{}",
        mail.data
    );
    assert_eq!(mail.to, vec!["zoë@example.com".to_owned()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Votre code ✓ — 123456")
    );
    assert_eq!(mail.text(), "Bonjour Zoë,\nvotre code est 123456 ✓");
    assert_eq!(mail.html(), "<p>code</p>\n.\n..two dots\n.one dot");
}

#[tokio::test]
async fn base64_parts_are_decoded() {
    let server = SmtpServer::start().await;
    let message = EmailMessage {
        to: "user@example.com".to_owned(),
        subject: "認証コード".to_owned(),
        text: "認証コードは 123456 です。".to_owned(),
        html: "<p>認証コードは <b>123456</b> です。</p>".to_owned(),
    };
    send_email(&settings(server.port), &message, &MapSecrets::default())
        .await
        .unwrap();

    let mail = &server.wait_for(1).await[0];
    assert!(
        mail.data.contains("Content-Transfer-Encoding: base64"),
        "{}",
        mail.data
    );
    assert_eq!(mail.header("Subject").as_deref(), Some("認証コード"));
    assert_eq!(mail.text(), "認証コードは 123456 です。");
    assert_eq!(mail.html(), "<p>認証コードは <b>123456</b> です。</p>");
}

#[tokio::test]
async fn delivers_with_auth_plain() {
    let server = SmtpServer::start_with_auth("mailer", "s3cret pass").await;
    send_email(
        &with_auth(server.port, "mailer"),
        &code_message(),
        &secrets("s3cret pass"),
    )
    .await
    .unwrap();
    let mail = &server.wait_for(1).await[0];
    assert_eq!(
        mail.text(),
        "Your code is 123456.\nIt expires in 5 minutes."
    );
}

#[tokio::test]
async fn delivers_with_auth_login() {
    let server = SmtpServer::start_with_login_auth("mailer", "s3cret").await;
    send_email(
        &with_auth(server.port, "mailer"),
        &code_message(),
        &secrets("s3cret"),
    )
    .await
    .unwrap();
    assert_eq!(server.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn wrong_password_fails_without_leaking_it() {
    let server = SmtpServer::start_with_auth("mailer", "s3cret").await;
    let err = send_email(
        &with_auth(server.port, "mailer"),
        &code_message(),
        &secrets("hunter2-wrong"),
    )
    .await
    .unwrap_err();
    let DeliveryError::Failed(reason) = err else {
        panic!("expected Failed, got {err:?}");
    };
    assert!(reason.contains("535"), "{reason}");
    assert!(!reason.contains("hunter2"), "{reason}");
    assert!(server.messages().await.is_empty());
}

#[tokio::test]
async fn credentials_required_but_not_configured_fails() {
    let server = SmtpServer::start_with_auth("mailer", "s3cret").await;
    let err = send_email(
        &settings(server.port),
        &code_message(),
        &MapSecrets::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Failed(r) if r.contains("530")),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_password_variable_is_a_config_error() {
    let server = SmtpServer::start_with_auth("mailer", "s3cret").await;
    let err = send_email(
        &with_auth(server.port, "mailer"),
        &code_message(),
        &MapSecrets::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Config(r) if r.contains("LATCHKEY_SMTP_PASSWORD")),
        "{err:?}"
    );
    assert!(server.messages().await.is_empty());
}

#[tokio::test]
async fn malformed_recipient_is_a_config_error() {
    let server = SmtpServer::start().await;
    let message = EmailMessage {
        to: "not an address".to_owned(),
        ..code_message()
    };
    let err = send_email(&settings(server.port), &message, &MapSecrets::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Config(r) if r.contains("invalid recipient")),
        "{err:?}"
    );
    assert!(server.messages().await.is_empty());
}

#[tokio::test]
async fn malformed_sender_is_a_config_error() {
    let server = SmtpServer::start().await;
    let settings = SmtpSettings {
        from: "Latchkey <nowhere>".to_owned(),
        ..settings(server.port)
    };
    let err = send_email(&settings, &code_message(), &MapSecrets::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Config(r) if r.contains("invalid sender")),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_connection_fails() {
    let port = closed_port().await;
    let err = send_email(&settings(port), &code_message(), &MapSecrets::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Failed(r) if r.contains(&format!("127.0.0.1:{port}"))),
        "{err:?}"
    );
}

#[tokio::test]
async fn silent_server_fails_within_the_timeout() {
    let port = silent_server().await;
    let settings = SmtpSettings {
        timeout_seconds: 1,
        ..settings(port)
    };
    let err = send_email(&settings, &code_message(), &MapSecrets::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Failed(_)), "{err:?}");
}

#[tokio::test]
async fn one_server_receives_several_messages() {
    let server = SmtpServer::start().await;
    for n in 0..3 {
        let message = EmailMessage {
            to: format!("user{n}@example.com"),
            ..code_message()
        };
        send_email(&settings(server.port), &message, &MapSecrets::default())
            .await
            .unwrap();
    }
    let mails = server.wait_for(3).await;
    let recipients: Vec<_> = mails.iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(
        recipients,
        [
            "user0@example.com",
            "user1@example.com",
            "user2@example.com"
        ]
    );
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails() {
    let server = SmtpServer::start().await;
    let settings = SmtpSettings {
        security: SmtpSecurity::Starttls,
        ..settings(server.port)
    };
    let err = send_email(&settings, &code_message(), &MapSecrets::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Failed(_)), "{err:?}");
    assert!(server.messages().await.is_empty());
}

#[tokio::test]
async fn implicit_tls_against_a_plain_server_fails() {
    let server = SmtpServer::start().await;
    let settings = SmtpSettings {
        security: SmtpSecurity::Tls,
        ..settings(server.port)
    };
    let err = send_email(&settings, &code_message(), &MapSecrets::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Failed(_)), "{err:?}");
    assert!(server.messages().await.is_empty());
}

#[tokio::test]
async fn starttls_with_the_tenants_ca_delivers_over_tls() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let server = SmtpServer::start_with_starttls(&ca).await;
    let settings = SmtpSettings {
        security: SmtpSecurity::Starttls,
        ca_file: Some(ca_file.to_string_lossy().into_owned()),
        ..settings(server.port)
    };
    send_email(&settings, &code_message(), &MapSecrets::default())
        .await
        .unwrap();
    let mails = server.wait_for(1).await;
    assert!(mails[0].tls, "the message came in the clear");
    assert_eq!(mails[0].to, ["ada@example.com"]);
}

#[tokio::test]
async fn implicit_tls_with_the_tenants_ca_delivers() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let server = SmtpServer::start_with_implicit_tls(&ca).await;
    let settings = SmtpSettings {
        security: SmtpSecurity::Tls,
        ca_file: Some(ca_file.to_string_lossy().into_owned()),
        ..settings(server.port)
    };
    send_email(&settings, &code_message(), &MapSecrets::default())
        .await
        .unwrap();
    assert!(server.wait_for(1).await[0].tls);
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    // The server's certificate is from one CA, the client trusts another (and
    // then only the system's): nothing is sent either way.
    let (ca, other) = (TestCa::new(), TestCa::new());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("other.pem");
    std::fs::write(&ca_file, &other.pem).unwrap();
    for (security, server) in [
        (
            SmtpSecurity::Starttls,
            SmtpServer::start_with_starttls(&ca).await,
        ),
        (
            SmtpSecurity::Tls,
            SmtpServer::start_with_implicit_tls(&ca).await,
        ),
    ] {
        for ca_file in [Some(ca_file.to_string_lossy().into_owned()), None] {
            let settings = SmtpSettings {
                security,
                ca_file,
                ..settings(server.port)
            };
            let err = send_email(&settings, &code_message(), &MapSecrets::default())
                .await
                .unwrap_err();
            assert!(matches!(err, DeliveryError::Failed(_)), "{err:?}");
        }
        assert!(server.messages().await.is_empty());
    }
}

#[tokio::test]
async fn an_unreadable_ca_file_is_a_config_error() {
    let ca = TestCa::new();
    let server = SmtpServer::start_with_starttls(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    for path in [dir.path().join("missing.pem"), garbage] {
        let settings = SmtpSettings {
            security: SmtpSecurity::Starttls,
            ca_file: Some(path.to_string_lossy().into_owned()),
            ..settings(server.port)
        };
        let err = send_email(&settings, &code_message(), &MapSecrets::default())
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Config(_)), "{err:?}");
    }
}
