//! The `latchkey` binary itself: first start, restarts, signals, the
//! `tenant apply` and `keys rotate` commands, logs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(data: &Path, extra: &[String]) -> Self {
        Self::start_with_file_limit(data, extra, None).await
    }

    /// Started by a shell that first sets its open-file limit (`ulimit`'s
    /// arguments: `-Sn 256` the soft one, `-n 128` both).
    async fn start_with_file_limit(data: &Path, extra: &[String], ulimit: Option<&str>) -> Self {
        let port = free_port();
        let mut command = match ulimit {
            None => Command::new(BIN),
            Some(limit) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit {limit} && exec \"$0\" \"$@\""), BIN]);
                c
            }
        };
        let child = command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data)
            .args(extra)
            .env_remove("LATCHKEY_MASTER_KEY")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let server = Self { child, port };
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(server.url("/healthz")).await
                && r.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("latchkey did not become healthy");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn localhost(&self, path: &str) -> (reqwest::Client, String) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        #[allow(
            clippy::disallowed_methods,
            reason = "a test client of the server under test, not an outbound request of latchkey"
        )]
        let c = reqwest::Client::builder()
            .resolve("localhost", addr)
            .build()
            .unwrap();
        (c, format!("http://localhost:{}{path}", self.port))
    }

    async fn jwks_kids(&self) -> Vec<String> {
        let (c, url) = self.localhost("/.well-known/jwks.json");
        let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    }

    fn terminate(mut self) -> (std::process::ExitStatus, String, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let out = child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[tokio::test]
async fn first_start_creates_a_development_tenant_that_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_args().await;
    let server = Server::start(dir.path(), &db).await;
    let port = server.port;
    let (c, url) = server.localhost("/.well-known/openid-configuration");
    let doc: Value = c.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], format!("http://localhost:{port}/"));
    let kids = server.jwks_kids().await;
    let (status, stdout, _) = server.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    assert!(stdout.contains("Development tenant ready"), "{stdout}");
    assert!(stdout.contains("demo@example.com"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Restarted on the same data (on another port): the same tenant, the
    // same keys, moved to the new port.
    let server = Server::start(dir.path(), &db).await;
    assert_ne!(server.port, port);
    let again = server.jwks_kids().await;
    let (status, _, _) = server.terminate();
    assert!(status.success());
    assert_eq!(again, kids);
}

#[tokio::test]
async fn in_flight_requests_finish_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &crate::support::database_args().await).await;
    let port = server.port;
    let body = "grant_type=client_credentials&client_id=nobody";
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nhost: localhost:{port}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The request that was under way completes.
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains("invalid_client"));
    let (status, _, _) = server.terminate_after_signal();
    assert!(status.success());
}

impl Server {
    fn terminate_after_signal(mut self) -> (std::process::ExitStatus, String, String) {
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let out = child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[tokio::test]
async fn tenant_apply_refuses_bad_files_with_the_line_and_applies_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_args().await;
    let file = dir.path().join("tenant.yaml");
    std::fs::write(
        &file,
        "tenant: { name: acme, domains: [\"login.acme.test\"] }\nclients:\n  - { client_id: spa, app_type: spa, colour: blue }\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["tenant", "apply"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("colour"), "{err}");

    std::fs::write(
        &file,
        "tenant: { name: acme, domains: [\"login.acme.test\"] }\nconnections: [{ name: db }]\nusers: [{ email: a@acme.test, password: \"Long-enough-1\", connection: db }]\n",
    )
    .unwrap();
    let apply = || {
        Command::new(BIN)
            .args(["tenant", "apply"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(&db)
            .output()
            .unwrap()
    };
    let out = apply();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("users created 1"));
    let out = apply();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unchanged 1"),
        "idempotent"
    );

    let out = Command::new(BIN)
        .args(["keys", "rotate", "--tenant", "acme", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("now signing with key"));
    // One sweep of every tenant, from the command line: nothing has ended.
    let out = Command::new(BIN)
        .args(["sweep", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("swept 0 row(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new(BIN)
        .args(["keys", "rotate", "--tenant", "nobody", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());

    // A different master key is refused before anything is served.
    let out = Command::new(BIN)
        .args(["tenant", "apply"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(&db)
        .env(
            "LATCHKEY_MASTER_KEY",
            "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ0=",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key does not match"));
}

#[tokio::test]
async fn json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = crate::support::database_args().await;
    args.extend(["--log-format".to_string(), "json".to_string()]);
    let server = Server::start(dir.path(), &args).await;
    let (status, _, stderr) = server.terminate();
    assert!(status.success());
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}

#[tokio::test]
async fn logs_prints_a_tenants_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_args().await;
    let data = dir.path().join("data");
    let port = free_port();
    let file = dir.path().join("tenant.yaml");
    std::fs::write(&file, crate::support::acme(port)).unwrap();
    let child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .arg("--tenant-file")
        .arg(&file)
        .args(&db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, port };
    for _ in 0..300 {
        if reqwest::get(server.url("/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A wrong password and an unknown user, then the right password.
    for (user, password) in [
        (crate::support::ALICE, "not-her-password"),
        ("nobody@example.com", "not-her-password"),
    ] {
        let (c, token_url) = server.localhost("/oauth/token");
        let res = c
            .post(token_url)
            .header("user-agent", "cli-test/1")
            .form(&[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
    }
    let (c, token_url) = server.localhost("/oauth/token");
    let aud = format!("http://localhost:{port}/me/");
    let body: Value = c
        .post(token_url)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", crate::support::ALICE),
            ("password", crate::support::ALICE_PASSWORD),
            ("audience", aud.as_str()),
            ("scope", "create:me:authentication_methods"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (c, url) = server.localhost("/me/v1/authentication-methods");
    let res = c
        .post(url)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .json(&serde_json::json!({"type": "totp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::ACCEPTED);
    let (status, _, _) = server.terminate();
    assert!(status.success());

    let out = Command::new(BIN)
        .args(["logs", "--tenant", "acme", "--data-dir"])
        .arg(&data)
        .args(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "fp",
            "fu",
            "s",
            "my_account_authentication_method_succeeded"
        ],
        "{stdout}"
    );
    // Auth0's log entry fields, at the entry's top level.
    let fp = &events[0];
    assert_eq!(fp["description"], "Wrong email or password.");
    assert_eq!(fp["client_id"], "spa");
    assert_eq!(fp["client_name"], "Demo SPA");
    assert_eq!(fp["connection"], "Username-Password-Authentication");
    assert_eq!(fp["user_id"], "auth0|alice");
    assert_eq!(fp["user_name"], crate::support::ALICE);
    assert_eq!(fp["user_agent"], "cli-test/1");
    assert_eq!(fp["ip"], "127.0.0.1");
    assert!(fp["date"].is_string() && fp["log_id"].is_string(), "{fp}");
    let fu = &events[1];
    assert_eq!(fu["user_id"], serde_json::Value::Null);
    assert_eq!(fu["user_name"], "nobody@example.com");
    assert_eq!(events[2]["description"], "Success Login");
    assert_eq!(events[2]["user_id"], "auth0|alice");
    let method = &events[3];
    assert_eq!(method["details"]["operation"], "create");
    assert_eq!(method["details"]["authentication_method"], "totp");
    assert_eq!(method["user_id"], "auth0|alice");
    assert_eq!(method["tenant_name"], "acme");
    assert!(!stdout.contains("not-her-password"), "no passwords in logs");
    assert!(!stdout.contains("auth_session"), "no secrets in logs");
}

/// Sends `signal` to the server's process.
fn signal(server: &Server, signal: &str) {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits (up to a generous bound) for the process to exit.
async fn exited(server: &mut Server, bound: Duration) -> Option<std::process::ExitStatus> {
    let until = tokio::time::Instant::now() + bound;
    while tokio::time::Instant::now() < until {
        if let Some(status) = server.child.try_wait().unwrap() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A connection holding half a request (headers sent, body not).
async fn half_request(port: u16) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nhost: localhost:{port}\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nclient_id"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

fn patient(extra: &[&str]) -> Vec<String> {
    // Connection limits far beyond the test, so only the stop ends it.
    let mut args: Vec<String> = [
        "--header-timeout",
        "600",
        "--body-timeout",
        "600",
        "--idle-timeout",
        "600",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test]
async fn a_half_sent_request_does_not_keep_a_stopping_server_past_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = patient(&["--shutdown-timeout", "1"]);
    args.extend(crate::support::database_args().await);
    let mut server = Server::start(dir.path(), &args).await;
    let _held = half_request(server.port).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&server, "-TERM");
    let status = exited(&mut server, Duration::from_secs(30))
        .await
        .expect("still running long after the stop deadline");
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    use std::io::Read;
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("stop deadline reached"), "{stderr}");
}

#[tokio::test]
async fn a_second_signal_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = patient(&["--shutdown-timeout", "600"]);
    args.extend(crate::support::database_args().await);
    for second in ["-TERM", "-INT"] {
        let mut server = Server::start(dir.path(), &args).await;
        let _held = half_request(server.port).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        signal(&server, "-TERM");
        // The first signal waits for the request in flight…
        assert!(
            exited(&mut server, Duration::from_millis(500))
                .await
                .is_none()
        );
        // …the second does not.
        signal(&server, second);
        assert!(
            exited(&mut server, Duration::from_secs(30)).await.is_some(),
            "a second {second} did not stop the server"
        );
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn serve_raises_the_soft_open_file_limit_to_the_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_args().await;
    let server = Server::start_with_file_limit(dir.path(), &db, Some("-Sn 256")).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft below hard: {line}");
}

/// The fault as it was seen: more idle connections than the process has
/// descriptors. The cap keeps `accept` from running out, the idle timeout
/// frees the slots, and a new client's `/healthz` is answered.
#[tokio::test]
async fn more_idle_connections_than_descriptors_do_not_lock_out_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = ["--idle-timeout", "1", "--header-timeout", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(crate::support::database_args().await);
    let server = Server::start_with_file_limit(dir.path(), &args, Some("-n 128")).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", server.port))
                .await
                .unwrap(),
        );
    }
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    stream
        .write_all(
            format!(
                "GET /healthz HTTP/1.1\r\nhost: localhost:{}\r\nconnection: close\r\n\r\n",
                server.port
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("/healthz was not answered")
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(idle);
}

/// Runs `latchkey serve` on `data` expecting it to fail at start; its stderr.
fn failed_start(data: &Path, args: &[String], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("LATCHKEY_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "started: {stderr}");
    stderr
}

fn names_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn a_start_that_fails_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = crate::support::database_args().await;
    // The address is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut args = vec!["--listen".to_string(), addr.clone()];
    args.extend(db.iter().cloned());
    let err = failed_start(&data, &args, &[]);
    assert!(err.contains(&addr), "{err}");
    assert_eq!(names_in(&data), Vec::<String>::new(), "{err}");
    // A tenant file that does not parse.
    let file = dir.path().join("tenant.yaml");
    std::fs::write(
        &file,
        "tenant: { name: acme, domains: [\"login.acme.test\"] }\ncolour: blue\n",
    )
    .unwrap();
    let mut args = vec![
        "--listen".to_string(),
        format!("127.0.0.1:{}", free_port()),
        "--tenant-file".to_string(),
        file.display().to_string(),
    ];
    args.extend(db.iter().cloned());
    let err = failed_start(&data, &args, &[]);
    assert!(err.contains("line 2") && err.contains("colour"), "{err}");
    assert_eq!(names_in(&data), Vec::<String>::new(), "{err}");
}

#[tokio::test]
async fn a_missing_master_key_file_is_named_and_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_args().await;
    let server = Server::start(dir.path(), &db).await;
    let (status, _, _) = server.terminate();
    assert!(status.success());
    let key = dir.path().join("master.key");
    std::fs::remove_file(&key).unwrap();
    let mut args = vec!["--listen".to_string(), format!("127.0.0.1:{}", free_port())];
    args.extend(db.iter().cloned());
    let err = failed_start(dir.path(), &args, &[]);
    assert!(
        err.contains(&key.display().to_string()) && err.contains("is missing"),
        "{err}"
    );
    assert!(!err.contains("does not match"), "{err}");
    assert!(!key.exists(), "no new key was generated");
}

#[tokio::test]
async fn an_unreachable_postgresql_is_named_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args = [
        "--listen".to_string(),
        format!("127.0.0.1:{}", free_port()),
        "--database-url".to_string(),
        format!("postgres://latchkey@127.0.0.1:{port}/latchkey"),
        "--database-acquire-timeout".to_string(),
        "2".to_string(),
    ];
    let err = failed_start(dir.path(), &args, &[]);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.to_lowercase().contains("refused"),
        "{err}"
    );
    assert_eq!(names_in(dir.path()), Vec::<String>::new(), "{err}");
}

#[tokio::test]
async fn a_data_directory_that_cannot_be_written_is_named() {
    // A directory that exists and that nobody, root included, can write in.
    let data = Path::new("/proc/self/fdinfo");
    let args = ["--listen".to_string(), format!("127.0.0.1:{}", free_port())];
    let key = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ0=";
    let err = failed_start(data, &args, &[("LATCHKEY_MASTER_KEY", key)]);
    assert!(
        err.contains("the data directory /proc/self/fdinfo is not writable"),
        "{err}"
    );
    // Without a key, the development key cannot be written either: named too.
    let err = failed_start(data, &args, &[]);
    assert!(err.contains("/proc/self/fdinfo"), "{err}");
}

/// An upstream connection's client secret comes from the environment: a
/// variable that is not set is named when the file is applied, and when a
/// server starts on a database that holds such a connection.
#[tokio::test]
async fn upstream_secrets_must_be_set_at_apply_and_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = crate::support::database_args().await;
    let file = dir.path().join("tenant.yaml");
    std::fs::write(
        &file,
        "tenant: { name: acme, domains: [\"login.acme.test\"] }\nclients: [{ client_id: spa, app_type: spa }]\n\
         connections:\n  - name: gh\n    strategy: github\n    options: { client_id: Iv1.x, client_secret_env: LK_TEST_GH_SECRET }\n    \
         connected_accounts: { active: true }\n    enabled_clients: [spa]\n",
    )
    .unwrap();
    let apply = |secret: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["tenant", "apply"])
            .arg(&file)
            .arg("--data-dir")
            .arg(&data)
            .args(&db)
            .env_remove("LATCHKEY_MASTER_KEY")
            .env_remove("LK_TEST_GH_SECRET");
        if let Some(s) = secret {
            cmd.env("LK_TEST_GH_SECRET", s);
        }
        cmd.output().unwrap()
    };
    let out = apply(None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("connections[0] (gh)")
            && err.contains("LK_TEST_GH_SECRET")
            && err.contains("not set"),
        "{err}"
    );
    let out = apply(Some("gh-secret"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut args = vec!["--listen".to_string(), format!("127.0.0.1:{}", free_port())];
    args.extend(db.iter().cloned());
    let err = failed_start(&data, &args, &[]);
    assert!(
        err.contains("tenant acme") && err.contains("LK_TEST_GH_SECRET"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unusable_outbound_ca_file_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = crate::support::database_args().await;
    let junk = dir.path().join("ca.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    for (file, expected) in [
        (dir.path().join("missing.pem"), "reading"),
        (junk, "no certificate"),
    ] {
        let mut args = vec![
            "--listen".to_string(),
            format!("127.0.0.1:{}", free_port()),
            "--outbound-ca-file".to_string(),
            file.display().to_string(),
        ];
        args.extend(db.iter().cloned());
        let err = failed_start(&data, &args, &[]);
        assert!(
            err.contains("--outbound-ca-file")
                && err.contains(&file.display().to_string())
                && err.contains(expected),
            "{err}"
        );
        assert!(!data.join("latchkey.db").exists(), "{err}");
    }
}

#[test]
fn read_only_commands_on_an_empty_data_directory_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("not-a-data-dir");
    for args in [
        vec!["tenant", "export", "--tenant", "acme"],
        vec!["logs", "--tenant", "acme"],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("LATCHKEY_DATABASE_URL")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("holds no latchkey database"),
            "{args:?}: {err}"
        );
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
}

#[test]
fn tenant_export_writes_a_file_that_applies_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("tenant.yaml");
    std::fs::write(
        &file,
        "tenant: { name: acme, domains: [\"login.acme.test\"] }\nconnections: [{ name: db }]\n\
         clients: [{ client_id: web, app_type: regular_web, client_secret: \"web-secret-value\" }]\n\
         users: [{ email: a@acme.test, password: \"Long-enough-1\", connection: db }]\n",
    )
    .unwrap();
    let run = |args: &[&str], file: &std::path::Path| {
        Command::new(BIN)
            .args(args)
            .arg(file)
            .arg("--data-dir")
            .arg(&data)
            .env("LATCHKEY_CLIENT_SECRET_WEB", "web-secret-value")
            .env_remove("LATCHKEY_DATABASE_URL")
            .output()
            .unwrap()
    };
    assert!(run(&["tenant", "apply"], &file).status.success());
    let exported = dir.path().join("exported.yaml");
    let out = run(
        &["tenant", "export", "--tenant", "acme", "--users", "-o"],
        &exported,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("$LATCHKEY_CLIENT_SECRET_WEB"), "{err}");
    assert!(err.contains("1 user(s) written"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&exported).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(!text.contains("web-secret-value"), "{text}");
    // Applied back twice: the second changes nothing.
    assert!(run(&["tenant", "apply"], &exported).status.success());
    let out = run(&["tenant", "apply"], &exported);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("unchanged 1"), "{stdout}");
}
