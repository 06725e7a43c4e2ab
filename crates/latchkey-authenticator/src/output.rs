//! What the authenticator prints: with `--json`, one JSON object per event on
//! stdout (and prompts on stderr); otherwise text for a person on stdout.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// An event: `value` with `--json`, else `text`.
    pub fn event(&self, value: Value, text: &str) {
        if self.json {
            line(&mut std::io::stdout().lock(), &value.to_string());
        } else {
            line(&mut std::io::stdout().lock(), text);
        }
    }

    pub fn error(&self, txlnkid: Option<&str>, message: &str) {
        let mut value = json!({"event": "error", "message": message});
        if let Some(id) = txlnkid {
            value["txlnkid"] = json!(id);
        }
        if self.json {
            line(&mut std::io::stdout().lock(), &value.to_string());
        } else {
            line(&mut std::io::stderr().lock(), &format!("error: {message}"));
        }
    }

    /// A question for the person at the terminal.
    pub fn prompt(&self, text: &str) {
        if self.json {
            line(&mut std::io::stderr().lock(), text);
        } else {
            line(&mut std::io::stdout().lock(), text);
        }
    }
}

fn line(out: &mut dyn std::io::Write, text: &str) {
    // A closed pipe leaves nothing to report to.
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
