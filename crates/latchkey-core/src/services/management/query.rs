//! The Management API's search of users (`GET /users?q=…&sort=…`, Auth0's
//! `search_engine=v3`): a query in Lucene's syntax read into the store's
//! [`UserFilter`], and `sort` into its order.
//!
//! What is read: `field:value`, `field:"a phrase"` (both exact, without
//! regard to case for the email and the profile's names), `field:prefix*`,
//! `field:*` (has a value), `email:*@example.com` (the email's domain), the
//! operators `AND`, `OR`, `NOT` (and `+`, `-`), parentheses, and terms side
//! by side, which Lucene joins with `OR`. The fields: `user_id`, `email`,
//! `email.domain`, `identities.connection`, `email_verified`, `blocked`,
//! `name`, `given_name`, `family_name`, `nickname`, `username`. Anything
//! else (a term without a field, ranges, fuzzy or proximity searches,
//! boosts, `?` and inner wildcards, other fields such as metadata) is
//! refused with a message naming it, never answered approximately.

use crate::store::{UserField, UserFilter, UserMatch, UserOrder};

/// The longest query read, characters (Auth0's limit).
pub const MAX_QUERY_CHARS: usize = 300;
/// Nesting beyond this is refused (parentheses, `NOT`).
const MAX_DEPTH: usize = 16;

/// Why a query cannot be run: a sentence naming what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(message.into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Plus,
    Minus,
    /// `field:value`; `quoted` when the value was a phrase.
    Term {
        field: String,
        value: String,
        quoted: bool,
    },
}

/// Reads a word up to a delimiter, undoing `\` escapes; `escaped` tells
/// whether any character was escaped (then a `*` in it is literal).
fn word(chars: &[char], i: &mut usize) -> (String, Vec<bool>) {
    let mut out = String::new();
    let mut literal = Vec::new();
    while *i < chars.len() {
        let c = chars[*i];
        if c.is_whitespace() || c == '(' || c == ')' {
            break;
        }
        if c == '\\' && *i + 1 < chars.len() {
            out.push(chars[*i + 1]);
            literal.push(true);
            *i += 2;
            continue;
        }
        out.push(c);
        literal.push(false);
        *i += 1;
    }
    (out, literal)
}

fn tokens(q: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push(Token::Open);
                i += 1;
                continue;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
                continue;
            }
            '+' => {
                out.push(Token::Plus);
                i += 1;
                continue;
            }
            '-' => {
                out.push(Token::Minus);
                i += 1;
                continue;
            }
            '!' => {
                out.push(Token::Not);
                i += 1;
                continue;
            }
            '"' => return refuse("A phrase needs a field before it (field:\"value\")."),
            '[' | '{' => return refuse("Range queries ([a TO b], {a TO b}) are not supported."),
            _ => {}
        }
        if chars[i..].starts_with(&['&', '&']) {
            out.push(Token::And);
            i += 2;
            continue;
        }
        if chars[i..].starts_with(&['|', '|']) {
            out.push(Token::Or);
            i += 2;
            continue;
        }
        // A field name, up to its unescaped `:`.
        let start = i;
        let mut field = String::new();
        while i < chars.len()
            && chars[i] != ':'
            && !chars[i].is_whitespace()
            && chars[i] != '('
            && chars[i] != ')'
        {
            if chars[i] == '\\' && i + 1 < chars.len() {
                field.push(chars[i + 1]);
                i += 2;
                continue;
            }
            field.push(chars[i]);
            i += 1;
        }
        if i >= chars.len() || chars[i] != ':' {
            let text: String = chars[start..i].iter().collect();
            match text.as_str() {
                "AND" => out.push(Token::And),
                "OR" => out.push(Token::Or),
                "NOT" => out.push(Token::Not),
                _ => {
                    return refuse(format!(
                        "The term {text:?} has no field: search a field (for example email:\"{text}\")."
                    ));
                }
            }
            continue;
        }
        i += 1; // the ':'
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            let mut value = String::new();
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return refuse(format!("The phrase of {field} is not closed with \"."));
            }
            if i < chars.len() && matches!(chars[i], '~' | '^') {
                return refuse(format!(
                    "Proximity searches and boosts ({field}:\"…\"{}) are not supported.",
                    chars[i]
                ));
            }
            out.push(Token::Term {
                field,
                value,
                quoted: true,
            });
            continue;
        }
        if i < chars.len() && matches!(chars[i], '[' | '{') {
            return refuse(format!(
                "Range queries ({field}:[a TO b]) are not supported."
            ));
        }
        if i < chars.len() && chars[i] == '(' {
            return refuse(format!(
                "Groups of values ({field}:(a b)) are not supported: write {field}:a OR {field}:b."
            ));
        }
        let (value, literal) = word(&chars, &mut i);
        if value.is_empty() {
            return refuse(format!("The field {field} has no value."));
        }
        for (c, lit) in value.chars().zip(&literal) {
            if *lit {
                continue;
            }
            match c {
                '?' => {
                    return refuse(format!(
                        "Single-character wildcards (?) in {field}:{value} are not supported."
                    ));
                }
                '~' => {
                    return refuse(format!(
                        "Fuzzy searches ({field}:{value}) are not supported."
                    ));
                }
                '^' => return refuse(format!("Boosts ({field}:{value}) are not supported.")),
                '"' | ':' => {
                    return refuse(format!(
                        "The value {value:?} of {field} has a {c} that is not escaped."
                    ));
                }
                _ => {}
            }
        }
        // Wildcards: keep a marker only for unescaped `*`.
        let marked: String = value
            .chars()
            .zip(&literal)
            .map(|(c, lit)| if c == '*' && !lit { '\u{0}' } else { c })
            .collect();
        out.push(Token::Term {
            field,
            value: marked,
            quoted: false,
        });
    }
    Ok(out)
}

fn field_of(name: &str) -> Result<UserField, QueryError> {
    Ok(match name {
        "user_id" => UserField::UserId,
        "email" => UserField::Email,
        "email.domain" => UserField::EmailDomain,
        "identities.connection" => UserField::Connection,
        "email_verified" => UserField::EmailVerified,
        "blocked" => UserField::Blocked,
        "name" => UserField::Name,
        "given_name" => UserField::GivenName,
        "family_name" => UserField::FamilyName,
        "nickname" => UserField::Nickname,
        "username" => UserField::Username,
        _ => {
            return refuse(format!(
                "The field {name} cannot be searched here: latchkey searches user_id, email, email.domain, identities.connection, email_verified, blocked, name, given_name, family_name, nickname and username."
            ));
        }
    })
}

/// One `field:value` as a filter.
fn term(field: &str, value: &str, quoted: bool) -> Result<UserFilter, QueryError> {
    let f = field_of(field)?;
    const STAR: char = '\u{0}';
    let shown = value.replace(STAR, "*");
    if matches!(f, UserField::EmailVerified | UserField::Blocked) {
        return match value {
            "true" => Ok(UserFilter::Field(f, UserMatch::Flag(true))),
            "false" => Ok(UserFilter::Field(f, UserMatch::Flag(false))),
            _ => refuse(format!("{field} is true or false, not {shown:?}.")),
        };
    }
    if quoted || !value.contains(STAR) {
        return Ok(UserFilter::Field(f, UserMatch::Is(value.to_string())));
    }
    if value == STAR.to_string() {
        return Ok(UserFilter::Field(f, UserMatch::Present));
    }
    let stars = value.matches(STAR).count();
    if stars == 1 && value.ends_with(STAR) {
        let prefix = &value[..value.len() - STAR.len_utf8()];
        if f == UserField::EmailDomain {
            return refuse(format!(
                "Wildcards in email.domain ({field}:{shown}) are not supported."
            ));
        }
        return Ok(UserFilter::Field(f, UserMatch::Prefix(prefix.to_string())));
    }
    if f == UserField::Email
        && stars == 1
        && let Some(domain) = value.strip_prefix(&format!("{STAR}@"))
        && !domain.is_empty()
    {
        return Ok(UserFilter::Field(
            UserField::EmailDomain,
            UserMatch::Is(domain.to_string()),
        ));
    }
    refuse(format!(
        "The wildcard search {field}:{shown} is not supported: a * may end a value (john*), or stand for a whole value (field:*), or start an email's domain (email:*@example.com)."
    ))
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self, depth: usize) -> Result<UserFilter, QueryError> {
        let mut parts = vec![self.and(depth)?];
        loop {
            match self.peek() {
                None | Some(Token::Close) => break,
                Some(Token::Or) => {
                    self.at += 1;
                    parts.push(self.and(depth)?);
                }
                // Side by side: Lucene's default operator, OR.
                Some(_) => parts.push(self.and(depth)?),
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            UserFilter::Any(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<UserFilter, QueryError> {
        let mut parts = vec![self.unary(depth)?];
        while let Some(Token::And) = self.peek() {
            self.at += 1;
            parts.push(self.unary(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            UserFilter::All(parts)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<UserFilter, QueryError> {
        if depth > MAX_DEPTH {
            return refuse("The query nests too deeply.");
        }
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        match token {
            Some(Token::Not | Token::Minus) => {
                Ok(UserFilter::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some(Token::Plus) => self.unary(depth + 1),
            Some(Token::Open) => {
                let inner = self.or(depth + 1)?;
                match self.peek() {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => refuse("A ( is not closed."),
                }
            }
            Some(Token::Term {
                field,
                value,
                quoted,
            }) => term(&field, &value, quoted),
            Some(Token::Close) => refuse("A ) closes nothing."),
            Some(Token::And) | Some(Token::Or) => refuse("An operator (AND, OR) lacks a term."),
            None => refuse("The query ends where a term was expected."),
        }
    }
}

/// The filter a query stands for.
pub fn parse(q: &str) -> Result<UserFilter, QueryError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return refuse(format!(
            "The query is longer than {MAX_QUERY_CHARS} characters."
        ));
    }
    if q.chars().any(char::is_control) {
        return refuse("The query has control characters.");
    }
    let tokens = tokens(q)?;
    if tokens.is_empty() {
        return refuse("The query is empty.");
    }
    let mut p = Parser { tokens, at: 0 };
    let filter = p.or(0)?;
    if p.at < p.tokens.len() {
        return refuse("A ) closes nothing.");
    }
    Ok(filter)
}

/// `sort`: `field:1` (ascending) or `field:-1` (descending).
pub fn sort(s: &str) -> Result<(UserOrder, bool), QueryError> {
    let Some((field, direction)) = s.split_once(':') else {
        return refuse(format!(
            "The sort {s:?} is not field:1 or field:-1 (for example created_at:1)."
        ));
    };
    let descending = match direction {
        "1" => false,
        "-1" => true,
        _ => {
            return refuse(format!(
                "The sort {s:?} is not field:1 or field:-1 (for example created_at:1)."
            ));
        }
    };
    let order = match field {
        "created_at" => UserOrder::CreatedAt,
        "updated_at" => UserOrder::UpdatedAt,
        "email" => UserOrder::Email,
        "user_id" => UserOrder::UserId,
        "name" => UserOrder::Name,
        _ => {
            return refuse(format!(
                "Users cannot be sorted by {field} here: latchkey sorts by created_at, updated_at, email, user_id and name."
            ));
        }
    };
    Ok((order, descending))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(f: UserField, v: &str) -> UserFilter {
        UserFilter::Field(f, UserMatch::Is(v.into()))
    }

    #[test]
    fn exact_terms_and_operators() {
        assert_eq!(
            parse("email:\"Alice@Example.com\"").unwrap(),
            is(UserField::Email, "Alice@Example.com")
        );
        assert_eq!(
            parse("user_id:\"auth0|abc\" AND identities.connection:\"Users\"").unwrap(),
            UserFilter::All(vec![
                is(UserField::UserId, "auth0|abc"),
                is(UserField::Connection, "Users"),
            ])
        );
        assert_eq!(
            parse("email_verified:true OR NOT blocked:false").unwrap(),
            UserFilter::Any(vec![
                UserFilter::Field(UserField::EmailVerified, UserMatch::Flag(true)),
                UserFilter::Not(Box::new(UserFilter::Field(
                    UserField::Blocked,
                    UserMatch::Flag(false)
                ))),
            ])
        );
        // AND binds tighter than OR; side by side is OR; parentheses group.
        assert_eq!(
            parse("name:a name:b AND (nickname:c OR -username:d)").unwrap(),
            UserFilter::Any(vec![
                is(UserField::Name, "a"),
                UserFilter::All(vec![
                    is(UserField::Name, "b"),
                    UserFilter::Any(vec![
                        is(UserField::Nickname, "c"),
                        UserFilter::Not(Box::new(is(UserField::Username, "d"))),
                    ]),
                ]),
            ])
        );
        assert_eq!(
            parse("user_id:auth0|abc").unwrap(),
            is(UserField::UserId, "auth0|abc")
        );
    }

    #[test]
    fn wildcards_read_as_what_they_mean() {
        assert_eq!(
            parse("name:jo*").unwrap(),
            UserFilter::Field(UserField::Name, UserMatch::Prefix("jo".into()))
        );
        assert_eq!(
            parse("email:*").unwrap(),
            UserFilter::Field(UserField::Email, UserMatch::Present)
        );
        assert_eq!(
            parse("email:*@example.com").unwrap(),
            is(UserField::EmailDomain, "example.com")
        );
        // An escaped star is a star; a quoted one too.
        assert_eq!(parse("name:a\\*").unwrap(), is(UserField::Name, "a*"));
        assert_eq!(parse("name:\"a*\"").unwrap(), is(UserField::Name, "a*"));
    }

    #[test]
    fn what_cannot_be_run_is_refused_by_name() {
        for (q, says) in [
            ("jane", "has no field"),
            (
                "app_metadata.plan:gold",
                "app_metadata.plan cannot be searched",
            ),
            ("logins_count:[1 TO 5]", "Range queries"),
            ("name:jo?n", "Single-character wildcards"),
            ("name:john~", "Fuzzy"),
            ("name:\"a b\"~2", "Proximity"),
            ("name:*son", "wildcard search"),
            ("name:j*n", "wildcard search"),
            ("email:\"open", "not closed"),
            ("(email:a", "not closed"),
            ("email:a)", "closes nothing"),
            ("email:a AND", "ends where a term"),
            ("blocked:yes", "true or false"),
            ("name:(a b)", "Groups of values"),
            ("", "empty"),
        ] {
            let e = parse(q).unwrap_err();
            assert!(e.0.contains(says), "{q}: {}", e.0);
        }
        assert!(parse(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(parse(&format!("{}email:a{}", "(".repeat(40), ")".repeat(40))).is_err());
    }

    #[test]
    fn sorts() {
        assert_eq!(sort("created_at:1").unwrap(), (UserOrder::CreatedAt, false));
        assert_eq!(sort("email:-1").unwrap(), (UserOrder::Email, true));
        assert!(sort("created_at").unwrap_err().0.contains("field:1"));
        assert!(sort("created_at:2").is_err());
        assert!(
            sort("logins_count:1")
                .unwrap_err()
                .0
                .contains("logins_count")
        );
    }
}
