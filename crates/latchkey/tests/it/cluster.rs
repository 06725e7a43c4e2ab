//! Several `latchkey serve` processes on one PostgreSQL: what one node does,
//! the others see; single-use secrets have exactly one winner across nodes;
//! a database that goes away gives 503s and comes back by itself.
//!
//! These tests need PostgreSQL (`LATCHKEY_TEST_POSTGRES_URL`, set by the test
//! command) and run on both passes of the suite.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

fn postgres() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .expect("these tests need PostgreSQL: set LATCHKEY_TEST_POSTGRES_URL (scripts/test does)")
}

fn master_key() -> String {
    use latchkey::rng::{RngExt, SystemRng};
    let k: [u8; 32] = SystemRng.bytes();
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// A port for the public host's name (`localhost:PORT`, what a load balancer
/// would answer on): only named, never listened on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// A `latchkey serve` on a port of its own choosing (`--listen
    /// 127.0.0.1:0`, read back from its `latchkey listening` line: no port
    /// guessed here can be taken by another test in between), answering
    /// `/healthz`. A node that exits or stays silent fails the test with
    /// what it wrote.
    async fn start(
        url: &str,
        schema: &str,
        key: &str,
        tenant_file: Option<&std::path::Path>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .args([
            "--database-url",
            url,
            "--database-schema",
            schema,
            "--database-acquire-timeout",
            "2",
        ])
        .env("LATCHKEY_MASTER_KEY", key)
        .env("RUST_LOG", "warn,latchkey=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if let Some(f) = tenant_file {
            cmd.arg("--tenant-file").arg(f);
        }
        let mut child = cmd.spawn().unwrap();
        // The node's log, drained for as long as it runs (a full pipe would
        // stall it); the listening line's address sent on.
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && v["fields"]["message"] == "latchkey listening"
                        && let Some(port) = v["fields"]["address"]
                            .as_str()
                            .and_then(|a| a.rsplit(':').next())
                            .and_then(|p| p.parse().ok())
                    {
                        let _ = tx.send(port);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut node = Self {
            child,
            port: 0,
            _dir: dir,
        };
        let failed = |node: &mut Node, why: &str| -> ! {
            let _ = node.child.kill();
            let _ = node.child.wait();
            panic!("node {why}; its log:\n{}", log.lock().unwrap().join("\n"));
        };
        for _ in 0..600 {
            if node.port == 0
                && let Ok(port) = rx.try_recv()
            {
                node.port = port;
            }
            if node.port != 0
                && reqwest::get(format!("http://127.0.0.1:{}/healthz", node.port))
                    .await
                    .is_ok_and(|r| r.status().is_success())
            {
                return node;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                failed(&mut node, &format!("exited ({status})"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        failed(&mut node, "did not become healthy within 60 s")
    }

    /// A client that reaches this node with requests for the public `host`,
    /// as a load balancer in front of the nodes would; and the node's base URL.
    fn client(&self, host: &str) -> (reqwest::Client, String) {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::HOST, host.parse().unwrap());
        #[allow(
            clippy::disallowed_methods,
            reason = "a test client of the server under test, not an outbound request of latchkey"
        )]
        let c = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        (c, format!("http://127.0.0.1:{}", self.port))
    }
}

/// Two nodes sharing a fresh schema; the tenant (for the public host
/// `localhost:PUBLIC`) applied by the first.
async fn cluster() -> (Node, Node, String, tempfile::TempDir, String, String) {
    let url = postgres();
    let schema = fresh_schema(&url).await;
    let key = master_key();
    let public = free_port();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("acme.yaml");
    std::fs::write(&file, acme(public)).unwrap();
    let a = Node::start(&url, &schema, &key, Some(&file)).await;
    let b = Node::start(&url, &schema, &key, None).await;
    (a, b, format!("localhost:{public}"), files, schema, key)
}

/// A `Location` on the public host, sent to `node` instead.
fn via(location: &str, host: &str, node: &Node) -> String {
    location.replacen(
        &format!("http://{host}"),
        &format!("http://127.0.0.1:{}", node.port),
        1,
    )
}

async fn token(node: &Node, host: &str, scope: &str) -> Value {
    let (c, base) = node.client(host);
    let res = c
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("audience", &format!("http://{host}/me/")),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_share_tokens_enrollments_and_tenant_changes() {
    let (a, b, host, files, schema, key) = cluster().await;
    let t = token(&a, &host, ME_SCOPES).await;
    let at = t["access_token"].as_str().unwrap();

    // A token minted by one node works on the other.
    let (cb, base) = b.client(&host);
    let res = cb
        .get(format!("{base}/me/v1/factors"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // An enrollment started on A verifies on B.
    let (ca, _) = a.client(&host);
    let res = ca
        .post(format!("{base}/me/v1/authentication-methods"))
        .bearer_auth(at)
        .json(&json!({"type": "totp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    // The nodes run on the wall clock.
    let now = {
        use latchkey::clock::Clock;
        latchkey::clock::SystemClock.now()
    };
    let code = totp_now(body["manual_input_code"].as_str().unwrap(), now);
    let res = cb
        .post(format!("{}/verify", via(&location, &host, &b)))
        .bearer_auth(at)
        .json(&json!({"auth_session": body["auth_session"], "otp_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    // A tenant file applied through one node is seen by the other within
    // the tenant cache's lifetime (2 seconds), without a restart.
    let changed = std::fs::read_to_string(files.path().join("acme.yaml"))
        .unwrap()
        .replace(
            "factors: [password, totp, recovery-code]",
            "factors: [password, totp]",
        );
    std::fs::write(files.path().join("acme.yaml"), changed).unwrap();
    let out = Command::new(BIN)
        .args(["tenant", "apply"])
        .arg(files.path().join("acme.yaml"))
        .arg("--data-dir")
        .arg(files.path())
        .args(["--database-url", &postgres(), "--database-schema", &schema])
        .env("LATCHKEY_MASTER_KEY", &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = false;
    for _ in 0..50 {
        let f: Value = cb
            .get(format!("{base}/me/v1/factors"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if f["factors"].as_array().unwrap().len() == 2 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "node B never saw the new tenant file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_use_secrets_have_one_winner_across_nodes() {
    let (a, b, host, _files, _schema, _key) = cluster().await;
    let nodes = [&a, &b];

    // A refresh token used 16 times at once, on both nodes.
    let t = token(&a, &host, "offline_access read:me:factors").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (c, base) = nodes[i % 2].client(&host);
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            c.post(format!("{base}/oauth/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "spa"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let s = t.await.unwrap();
        assert!(s == StatusCode::OK || s == StatusCode::FORBIDDEN, "{s}");
        ok += usize::from(s == StatusCode::OK);
    }
    assert!(ok <= 1, "{ok} refreshes succeeded");
    // The reuse revoked the family: its first access token is dead everywhere.
    let (cb, base) = b.client(&host);
    let res = cb
        .get(format!("{base}/me/v1/factors"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // One enrollment verified 16 times at once, on both nodes.
    let t = token(&a, &host, ME_SCOPES).await;
    let at = t["access_token"].as_str().unwrap().to_string();
    let (ca, _) = a.client(&host);
    let res = ca
        .post(format!("{base}/me/v1/authentication-methods"))
        .bearer_auth(&at)
        .json(&json!({"type": "recovery-code"}))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    let session = body["auth_session"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (c, _) = nodes[i % 2].client(&host);
        let location = via(&location, &host, nodes[i % 2]);
        let (session, at) = (session.clone(), at.clone());
        tasks.push(tokio::spawn(async move {
            c.post(format!("{location}/verify"))
                .bearer_auth(at)
                .json(&json!({"auth_session": session}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut created = 0;
    for t in tasks {
        let s = t.await.unwrap();
        assert!(
            s == StatusCode::CREATED || s == StatusCode::BAD_REQUEST,
            "{s}"
        );
        created += usize::from(s == StatusCode::CREATED);
    }
    assert_eq!(created, 1);
    let list: Value = cb
        .get(format!(
            "{base}/me/v1/authentication-methods?type=recovery-code"
        ))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["authentication_methods"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_node_with_another_master_key_refuses_to_start() {
    let (_a, _b, _host, _files, schema, _key) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--database-url", &postgres(), "--database-schema", &schema])
        .env("LATCHKEY_MASTER_KEY", master_key())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key does not match"));
}

/// A throwaway PostgreSQL cluster of the test's own, which it may stop.
struct Throwaway {
    url: String,
    dir: String,
}

impl Throwaway {
    fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .env("LATCHKEY_PG_THROWAWAY", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let dir = String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_string();
        Self { url, dir }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .map(|e| e.unwrap().path().join("bin/pg_ctl"))
            .find(|p| p.exists())
            .unwrap();
        let port = self
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.dir
        );
        let data = format!("{}/data", self.dir);
        let log = format!("{}/log", self.dir);
        let mut all = vec![
            "-D",
            data.as_str(),
            "-l",
            log.as_str(),
            "-w",
            "-o",
            opts.as_str(),
        ];
        all.extend_from_slice(args);
        let status = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&bin)
                .args(&all)
                .status()
        } else {
            Command::new(&bin).args(&all).status()
        }
        .unwrap();
        assert!(status.success(), "pg_ctl {args:?}");
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
        let _ = Command::new("bash")
            .arg(script)
            .args(["stop", &self.dir])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_gives_503_and_recovers_without_a_restart() {
    let pg = Throwaway::start();
    let schema = fresh_schema(&pg.url).await;
    let key = master_key();
    let public = free_port();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("acme.yaml");
    std::fs::write(&file, acme(public)).unwrap();
    let node = Node::start(&pg.url, &schema, &key, Some(&file)).await;
    let host = format!("localhost:{public}");
    let t = token(&node, &host, ME_SCOPES).await;
    let at = t["access_token"].as_str().unwrap().to_string();
    let (c, base) = node.client(&host);

    pg.pg_ctl(&["-m", "immediate", "stop"]);
    // The tenant cache may still answer for up to 2 seconds; after that
    // every request needs the database.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = c
        .get(format!("{base}/me/v1/authentication-methods"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 503);
    assert!(body["type"].is_string() && body["title"].is_string());
    let res = c
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Liveness is not readiness: the process itself is fine.
    let res = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    pg.pg_ctl(&["start"]);
    let mut recovered = false;
    for _ in 0..100 {
        let res = c
            .get(format!("{base}/me/v1/authentication-methods"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "latchkey did not recover once PostgreSQL was back"
    );
    assert_eq!(
        c.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
