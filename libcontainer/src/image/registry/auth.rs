//! `WWW-Authenticate` challenges (RFC 7235) and the Bearer token cache of the distribution
//! token protocol.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercase: `basic`, `bearer`, ...
    pub scheme: String,
    /// Parameter names lowercase, values unquoted.
    pub params: HashMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses every challenge of a header value, e.g.
/// `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull", Basic realm="x"`.
/// Quoted strings may hold commas, `=` and `\"`; spaces around `=` and `,` are accepted.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, &'static str> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_ws_commas();
        if p.done() {
            break;
        }
        let scheme = p.token().ok_or("expected an authentication scheme")?;
        let mut params = HashMap::new();
        loop {
            p.skip_ws();
            // A token68 (`Basic abc==`) or the next parameter; the next challenge starts
            // where a token is not followed by `=`.
            let save = p.i;
            p.skip_ws_commas();
            if p.done() {
                break;
            }
            let Some(name) = p.token() else {
                return Err("expected a parameter name");
            };
            p.skip_ws();
            if !p.eat(b'=') {
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted().ok_or("unterminated quoted string")?
            } else {
                p.bare_value()
            };
            params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        });
    }
    if out.is_empty() {
        return Err("no challenge");
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    /// An RFC 7230 token (plus `/`, which token68 values use).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    /// An unquoted value, leniently up to the next `,` or blank (some servers leave URLs
    /// unquoted).
    fn bare_value(&mut self) -> String {
        let start = self.i;
        while matches!(self.peek(), Some(c) if !matches!(c, b',' | b' ' | b'\t')) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    out.push(self.peek()?);
                    self.i += 1;
                }
                c => out.push(c),
            }
        }
        None
    }
}

/// Which authentication the registry asked for, learned from its first 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Scheme {
    /// Bearer wins over Basic when a registry offers both.
    pub fn choose(challenges: &[Challenge]) -> Option<Scheme> {
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        if let Some(c) = bearer {
            if let Some(realm) = c.param("realm").filter(|r| !r.is_empty()) {
                return Some(Scheme::Bearer {
                    realm: realm.to_string(),
                    service: c.param("service").map(str::to_string),
                });
            }
        }
        challenges
            .iter()
            .any(|c| c.scheme == "basic")
            .then_some(Scheme::Basic)
    }
}

/// Tokens by scope, kept until shortly before they expire.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: HashMap<String, (String, Instant)>,
}

impl TokenCache {
    pub fn get(&self, scope: &str) -> Option<&str> {
        self.tokens
            .get(scope)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.as_str())
    }
    pub fn insert(&mut self, scope: &str, token: String, expires_in: Duration) {
        // Leave a margin so a token is not used in its last seconds.
        let life = expires_in
            .saturating_sub(Duration::from_secs(10))
            .max(Duration::from_secs(1));
        self.tokens
            .insert(scope.to_string(), (token, Instant::now() + life));
    }
    pub fn forget(&mut self, scope: &str) {
        self.tokens.remove(scope);
    }
}

/// The token endpoint's answer: `token` or `access_token`, and `expires_in` (60 s when absent,
/// as the token spec says).
pub fn parse_token_response(body: &[u8]) -> Result<(String, Duration), String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("answer is not json: {e}"))?;
    let token = v
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .or_else(|| v.get("access_token").and_then(|t| t.as_str()))
        .filter(|t| !t.is_empty())
        .ok_or("answer has no \"token\" nor \"access_token\"")?;
    let expires = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .unwrap_or(60)
        .max(60);
    Ok((token.to_string(), Duration::from_secs(expires)))
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_challenge() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
        assert_eq!(
            Scheme::choose(&c),
            Some(Scheme::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
    }

    #[test]
    fn odd_but_valid_challenges() {
        let c = parse_challenges(
            "basic realm = \"a, \\\"quoted\\\" = realm\" , BEARER Realm=http://t/x,service=s,scope=\"repository:a:pull,push\"",
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("a, \"quoted\" = realm"));
        assert_eq!(c[1].param("realm"), Some("http://t/x"));
        assert_eq!(c[1].param("scope"), Some("repository:a:pull,push"));
        // Bearer chosen over Basic.
        assert!(matches!(Scheme::choose(&c), Some(Scheme::Bearer { .. })));
        // A token68 challenge, then another challenge.
        let c = parse_challenges("Negotiate abc==, Basic realm=\"r\"").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(Scheme::choose(&c), Some(Scheme::Basic));
        let c = parse_challenges("Basic").unwrap();
        assert_eq!(Scheme::choose(&c), Some(Scheme::Basic));
    }

    #[test]
    fn broken_challenges() {
        assert!(parse_challenges("").is_err());
        assert!(parse_challenges("Bearer realm=\"open").is_err());
        assert!(parse_challenges("=x").is_err());
        // Bearer without realm cannot be used.
        assert_eq!(
            Scheme::choose(&parse_challenges("Bearer service=x").unwrap()),
            None
        );
    }

    #[test]
    fn token_answers() {
        let (t, e) = parse_token_response(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((t.as_str(), e.as_secs()), ("abc", 300));
        let (t, e) = parse_token_response(br#"{"access_token":"x"}"#).unwrap();
        assert_eq!((t.as_str(), e.as_secs()), ("x", 60));
        assert!(parse_token_response(br#"{"token":""}"#).is_err());
        assert!(parse_token_response(b"<html>").is_err());
    }

    #[test]
    fn cache_per_scope() {
        let mut c = TokenCache::default();
        c.insert("repository:a:pull", "ta".into(), Duration::from_secs(60));
        assert_eq!(c.get("repository:a:pull"), Some("ta"));
        assert_eq!(c.get("repository:b:pull"), None);
        c.forget("repository:a:pull");
        assert_eq!(c.get("repository:a:pull"), None);
    }

    #[test]
    fn escape() {
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
