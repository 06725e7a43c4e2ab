//! Reads YAML (and so JSON, its subset) into a [`serde_json::Value`],
//! remembering the line each node was written on so that later errors can
//! point at it.
//!
//! Scalars are resolved with the YAML 1.2 core schema: `true`/`false`,
//! `null`/`~`/empty, integers and floats; quoted and block scalars are always
//! strings. Anchors and aliases work, within limits that keep hostile input
//! from exhausting memory or the stack.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::file::TenantFileError;

/// Deepest nesting of sequences and mappings accepted.
const MAX_DEPTH: usize = 64;
/// Most nodes that aliases may copy in, all aliases together.
const MAX_ALIASED_NODES: usize = 100_000;
/// The largest tenant file accepted, in bytes.
pub(crate) const MAX_FILE_BYTES: usize = 32 << 20;
/// The longest key or value accepted, in bytes: far beyond any real setting
/// (a picture URL, metadata), far below what would burden every request
/// that reads the tenant's configuration.
pub(crate) const MAX_SCALAR_BYTES: usize = 64 << 10;
/// The prefix of the standard tags, which `!!` abbreviates.
const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// A parsed document and where its nodes are.
#[derive(Debug)]
pub(super) struct Document {
    pub(super) root: Value,
    pub(super) lines: LineMap,
}

/// Path → line. A path looks like `clients[1].grant_types[2]`; the root is
/// the empty path. A mapping entry is placed on the line of its key.
#[derive(Debug, Default)]
pub(super) struct LineMap(HashMap<String, usize>);

impl LineMap {
    /// Whether the node at `path` itself is written in the text (not left
    /// to a default).
    pub(super) fn written(&self, path: &str) -> bool {
        self.0.contains_key(path)
    }

    /// The line of `path`, or of its nearest ancestor present in the text
    /// (a key left to its default has no line of its own).
    pub(super) fn line_of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.0.get(path) {
                return Some(*line);
            }
            if path.is_empty() {
                return None;
            }
            path = parent_path(path);
        }
    }
}

/// The path of entry `key` of the mapping at `parent`.
pub(super) fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The path of item `index` of the sequence at `parent`.
pub(super) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

fn parent_path(path: &str) -> &str {
    let end = path.rfind(['.', '[']).unwrap_or(0);
    &path[..end]
}

/// Parses `text`, which must hold at most one document. An empty text gives
/// `Value::Null`.
pub(super) fn parse(text: &str) -> Result<Document, TenantFileError> {
    // Editors on Windows like to start files with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() > MAX_FILE_BYTES {
        return Err(TenantFileError {
            line: None,
            path: String::new(),
            message: too_large(text.len()),
        });
    }
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    loop {
        let (event, marker) = parser.next_token().map_err(|error| TenantFileError {
            line: Some(error.marker().line()),
            path: String::new(),
            message: format!("invalid YAML: {}", error.info()),
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.event(event, marker)?;
    }
    Ok(Document {
        root: builder.root.unwrap_or(Value::Null),
        lines: LineMap(builder.lines),
    })
}

/// A complete node together with what the limits need to know about it.
#[derive(Debug, Clone)]
struct Node {
    value: Value,
    /// Nodes in this subtree, itself included.
    size: usize,
    /// Levels of collections in this subtree; 0 for a scalar.
    depth: usize,
}

impl Node {
    fn scalar(value: Value) -> Self {
        Self {
            value,
            size: 1,
            depth: 0,
        }
    }
}

/// A sequence or mapping still being read.
#[derive(Debug)]
struct Frame {
    path: String,
    anchor: usize,
    size: usize,
    depth: usize,
    collection: Collection,
}

#[derive(Debug)]
enum Collection {
    Sequence(Vec<Value>),
    /// The entries so far, and the key awaiting its value.
    Mapping(Map<String, Value>, Option<String>),
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    documents: usize,
    lines: HashMap<String, usize>,
    anchors: HashMap<usize, Node>,
    aliased_nodes: usize,
}

impl Builder {
    fn event(&mut self, event: Event, marker: Marker) -> Result<(), TenantFileError> {
        let line = marker.line();
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self.error(line, "a tenant file must hold a single YAML document"));
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                if text.len() > MAX_SCALAR_BYTES {
                    let what = if self.awaiting_key() { "key" } else { "value" };
                    return Err(self.error(
                        line,
                        format!(
                            "this {what} is {} bytes long; at most {} KiB are accepted",
                            text.len(),
                            MAX_SCALAR_BYTES >> 10
                        ),
                    ));
                }
                let value = resolve_scalar(text, style, tag.as_ref())
                    .map_err(|message| self.error(line, message))?;
                let node = Node::scalar(value);
                if self.awaiting_key() {
                    return self.begin_entry(node, anchor, line);
                }
                self.place_next(line)?;
                self.complete(node, anchor, line)
            }
            Event::Alias(anchor) => {
                let Some(node) = self.anchors.get(&anchor).cloned() else {
                    // The parser knows the anchor, so its node is still open.
                    return Err(
                        self.error(line, "an alias cannot refer to a node that contains it")
                    );
                };
                self.aliased_nodes += node.size;
                if self.aliased_nodes > MAX_ALIASED_NODES {
                    return Err(self.error(line, "aliases expand to too many nodes"));
                }
                if self.stack.len() + node.depth > MAX_DEPTH {
                    return Err(self.error(line, "nesting is too deep"));
                }
                if self.awaiting_key() {
                    return self.begin_entry(node, 0, line);
                }
                self.place_next(line)?;
                self.complete(node, 0, line)
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(tag.as_ref(), "seq").map_err(|m| self.error(line, m))?;
                self.open(Collection::Sequence(Vec::new()), anchor, line)
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(tag.as_ref(), "map").map_err(|m| self.error(line, m))?;
                self.open(Collection::Mapping(Map::new(), None), anchor, line)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(self.error(line, "unbalanced collection"));
                };
                let value = match frame.collection {
                    Collection::Sequence(items) => Value::Array(items),
                    Collection::Mapping(entries, _) => Value::Object(entries),
                };
                let node = Node {
                    value,
                    size: frame.size,
                    depth: frame.depth,
                };
                self.complete(node, frame.anchor, line)
            }
        }
    }

    fn awaiting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                collection: Collection::Mapping(_, None),
                ..
            })
        )
    }

    /// Records the key `node`, read at `line`; its value comes next.
    fn begin_entry(
        &mut self,
        node: Node,
        anchor: usize,
        line: usize,
    ) -> Result<(), TenantFileError> {
        let Value::String(key) = &node.value else {
            return Err(self.error(line, "mapping keys must be strings"));
        };
        let key = key.clone();
        if anchor != 0 {
            self.anchors.insert(anchor, node);
        }
        let Some(Frame {
            path,
            collection: Collection::Mapping(entries, pending),
            ..
        }) = self.stack.last_mut()
        else {
            return Err(self.error(line, "mapping key outside a mapping"));
        };
        let entry_path = key_path(path, &key);
        if entries.contains_key(&key) {
            return Err(TenantFileError {
                line: Some(line),
                path: path.clone(),
                message: format!("duplicate key {key:?}"),
            });
        }
        self.lines.insert(entry_path, line);
        *pending = Some(key);
        Ok(())
    }

    /// The path of the node about to be read; while a key is awaited, that
    /// of the mapping.
    fn next_path(&self) -> String {
        let Some(frame) = self.stack.last() else {
            return String::new();
        };
        match &frame.collection {
            Collection::Sequence(items) => index_path(&frame.path, items.len()),
            Collection::Mapping(_, Some(key)) => key_path(&frame.path, key),
            Collection::Mapping(_, None) => frame.path.clone(),
        }
    }

    /// Records that the next node, a value, starts on `line`, unless it is
    /// a mapping value already placed on its key's line.
    fn place_next(&mut self, line: usize) -> Result<String, TenantFileError> {
        if self.awaiting_key() {
            return Err(self.error(line, "mapping keys must be strings"));
        }
        let path = self.next_path();
        self.lines.entry(path.clone()).or_insert(line);
        Ok(path)
    }

    fn open(
        &mut self,
        collection: Collection,
        anchor: usize,
        line: usize,
    ) -> Result<(), TenantFileError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(line, "nesting is too deep"));
        }
        let path = self.place_next(line)?;
        self.stack.push(Frame {
            path,
            anchor,
            size: 1,
            depth: 1,
            collection,
        });
        Ok(())
    }

    /// Stores a finished node, already placed, in its parent or as the root.
    fn complete(&mut self, node: Node, anchor: usize, line: usize) -> Result<(), TenantFileError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None if self.root.is_none() => {
                self.root = Some(node.value);
                Ok(())
            }
            None => Err(self.error(line, "a tenant file must hold a single YAML document")),
            Some(frame) => {
                frame.size += node.size;
                frame.depth = frame.depth.max(node.depth + 1);
                match &mut frame.collection {
                    Collection::Sequence(items) => items.push(node.value),
                    Collection::Mapping(entries, pending) => {
                        if let Some(key) = pending.take() {
                            entries.insert(key, node.value);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn error(&self, line: usize, message: impl Into<String>) -> TenantFileError {
        TenantFileError {
            line: Some(line),
            path: self.next_path(),
            message: message.into(),
        }
    }
}

/// Why a tenant file of `len` bytes is refused.
pub(crate) fn too_large(len: usize) -> String {
    format!(
        "the tenant file is {len} bytes; at most {} MiB are accepted",
        MAX_FILE_BYTES >> 20
    )
}

fn is_core_tag(tag: &Tag, name: &str) -> bool {
    tag.handle == CORE_TAG_PREFIX && tag.suffix == name
}

fn check_collection_tag(tag: Option<&Tag>, name: &str) -> Result<(), String> {
    match tag {
        Some(tag) if !is_core_tag(tag, name) => Err(unsupported_tag(tag)),
        _ => Ok(()),
    }
}

fn unsupported_tag(tag: &Tag) -> String {
    format!("unsupported tag \"{}{}\"", tag.handle, tag.suffix)
}

/// The value of a scalar under the core schema. Only `!!str` may tag one.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    match tag {
        Some(tag) if is_core_tag(tag, "str") => return Ok(Value::String(text)),
        Some(tag) => return Err(unsupported_tag(tag)),
        None => {}
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::String(text));
    }
    Ok(match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => match resolve_number(&text)? {
            Some(number) => Value::Number(number),
            None => Value::String(text),
        },
    })
}

/// A plain scalar that spells a number, or `None` if it is a string.
fn resolve_number(text: &str) -> Result<Option<Number>, String> {
    let out_of_range = || format!("the number {text} is out of range");
    let radix = match text.as_bytes() {
        [b'0', b'o', ..] => Some(8),
        [b'0', b'x', ..] => Some(16),
        _ => None,
    };
    if let Some(radix) = radix {
        let digits = &text[2..];
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return Ok(None);
        }
        return u64::from_str_radix(digits, radix)
            .map(|n| Some(Number::from(n)))
            .map_err(|_| out_of_range());
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if is_digits(unsigned) {
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Some(Number::from(n)));
        }
        return text
            .parse::<u64>()
            .map(|n| Some(Number::from(n)))
            .map_err(|_| out_of_range());
    }
    if is_float(unsigned) {
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Some)
            .ok_or_else(out_of_range);
    }
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Err(format!("{text} is not a supported number"));
    }
    Ok(None)
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, the core schema's
/// float without its sign.
fn is_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => is_digits(fraction),
        Some((whole, fraction)) => is_digits(whole) && (fraction.is_empty() || is_digits(fraction)),
        None => is_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| is_digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}
