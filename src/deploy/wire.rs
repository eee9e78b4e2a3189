//! The replies servers send on the system subjects, parsed defensively:
//! any server (or anything answering on its subjects) may send anything.
//! Pure functions, no I/O.

use serde_json::Value;

/// The largest reply natsform reads (a CLAIMS.LIST of many accounts, a
/// large account JWT). Larger replies are refused.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// The longest text of a server (name, reason) natsform keeps.
const MAX_TEXT: usize = 1024;

/// The most account keys one CLAIMS.LIST reply may name.
pub const MAX_LISTED_ACCOUNTS: usize = 200_000;

/// The `server` object of a reply: who answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerId {
    pub name: String,
    pub id: String,
    pub version: String,
}

/// What one server answered to an UPDATE or DELETE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateReply {
    pub server: ServerId,
    /// `data.account` / `error.account` when given.
    pub account: Option<String>,
    /// `Ok(message)` for `data`, `Err(description)` for `error`.
    pub outcome: Result<String, String>,
}

/// Text from a server, bounded and with control characters escaped.
fn text(v: Option<&Value>) -> String {
    let s = v.and_then(Value::as_str).unwrap_or_default();
    let cut: String = s.chars().take(MAX_TEXT).collect();
    crate::safepath::escape_controls(&cut).into_owned()
}

fn parse_json(payload: &[u8]) -> Result<Value, String> {
    if payload.len() > MAX_REPLY_BYTES {
        return Err(format!(
            "a reply of {} bytes, more than the {} natsform reads",
            payload.len(),
            MAX_REPLY_BYTES
        ));
    }
    serde_json::from_slice(payload).map_err(|_| "a reply that is not JSON".to_string())
}

fn server_of(v: &Value) -> Result<ServerId, String> {
    let s = v.get("server").ok_or("a reply without `server`")?;
    let id = ServerId {
        name: text(s.get("name")),
        id: text(s.get("id")),
        version: text(s.get("ver")),
    };
    if id.name.is_empty() && id.id.is_empty() {
        return Err("a reply whose server has no name".into());
    }
    Ok(id)
}

impl ServerId {
    /// The name reports use: the server's name, else its id.
    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// A `$SYS.REQ.SERVER.PING` reply (statsz): the server that answered.
pub fn ping_reply(payload: &[u8]) -> Result<ServerId, String> {
    server_of(&parse_json(payload)?)
}

/// A `$SYS.REQ.CLAIMS.UPDATE` or `…DELETE` reply, keyed by name, never by
/// position (2.9.10 and newer servers order keys differently).
pub fn update_reply(payload: &[u8]) -> Result<UpdateReply, String> {
    let v = parse_json(payload)?;
    let server = server_of(&v)?;
    let (outcome, body) = if let Some(e) = v.get("error").filter(|e| e.is_object()) {
        let description = text(e.get("description"));
        let description = if description.is_empty() {
            "rejected without a reason".to_string()
        } else {
            description
        };
        (Err(description), e)
    } else if let Some(d) = v.get("data").filter(|d| d.is_object()) {
        (Ok(text(d.get("message"))), d)
    } else {
        return Err("a reply with neither `data` nor `error`".into());
    };
    let account = body
        .get("account")
        .and_then(Value::as_str)
        .filter(|a| crate::claims::is_public_key(a, crate::claims::KeyKind::Account))
        .map(str::to_string);
    Ok(UpdateReply {
        server,
        account,
        outcome,
    })
}

/// A `$SYS.REQ.CLAIMS.LIST` reply: the server and the account keys it
/// holds (anything that is not an account public key is dropped).
pub fn list_reply(payload: &[u8]) -> Result<(ServerId, Vec<String>), String> {
    let v = parse_json(payload)?;
    let server = server_of(&v)?;
    let Some(list) = v.get("data").and_then(Value::as_array) else {
        return Err("a LIST reply without a `data` list".into());
    };
    if list.len() > MAX_LISTED_ACCOUNTS {
        return Err(format!(
            "a LIST reply naming {} accounts, more than {MAX_LISTED_ACCOUNTS}",
            list.len()
        ));
    }
    let mut keys: Vec<String> = list
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| crate::claims::is_public_key(a, crate::claims::KeyKind::Account))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys.dedup();
    Ok((server, keys))
}

/// A `…CLAIMS.LOOKUP` reply: `None` for the empty reply of a miss, else
/// the JWT when it is one for `account` (checked: signature, type, subject).
pub fn lookup_reply(payload: &[u8], account: &str) -> Result<Option<String>, String> {
    if payload.is_empty() {
        return Ok(None);
    }
    if payload.len() > MAX_REPLY_BYTES {
        return Err("a LOOKUP reply larger than natsform reads".into());
    }
    let token = std::str::from_utf8(payload)
        .map_err(|_| "a LOOKUP reply that is not text".to_string())?
        .trim();
    let decoded = crate::claims::decode(token)
        .map_err(|e| format!("a LOOKUP reply that is not a valid JWT ({e})"))?;
    match decoded.claims {
        crate::claims::AnyClaims::Account(c) if c.data.sub == account => {
            Ok(Some(token.to_string()))
        }
        _ => Err("a LOOKUP reply that is not this account's JWT".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc() -> String {
        crate::keys::generate(crate::keys::KeyKind::Account).public_key()
    }

    #[test]
    fn update_replies_of_both_key_orders() {
        let acc = acc();
        #[allow(non_snake_case)]
        let ACC = acc.as_str();
        let ok_29 = format!(
            r#"{{"data":{{"account":"{ACC}","code":200,"message":"jwt updated"}},"server":{{"name":"n1","host":"0.0.0.0","id":"NABC","ver":"2.9.10"}}}}"#
        );
        let r = update_reply(ok_29.as_bytes()).unwrap();
        assert_eq!(r.server.name, "n1");
        assert_eq!(r.account.as_deref(), Some(ACC));
        assert_eq!(r.outcome, Ok("jwt updated".into()));
        let err_new = r#"{"server":{"name":"n2","id":"NDEF","ver":"2.12.0"},"error":{"code":500,"description":"delete accounts request by O failed - delete must be enabled in server config"}}"#;
        let r = update_reply(err_new.as_bytes()).unwrap();
        assert_eq!(r.server.label(), "n2");
        assert_eq!(r.account, None);
        assert!(r.outcome.unwrap_err().contains("delete must be enabled"));
    }

    #[test]
    fn hostile_replies_are_refused_or_escaped() {
        assert!(update_reply(b"not json").is_err());
        assert!(update_reply(br#"{"data":{}}"#).is_err(), "no server");
        assert!(update_reply(br#"{"server":{"name":"x"}}"#).is_err());
        let evil =
            r#"{"server":{"name":"n\u001b[31m"},"error":{"description":"bad\u001b]0;x\u0007"}}"#;
        let r = update_reply(evil.as_bytes()).unwrap();
        assert!(!r.server.name.contains('\u{1b}'));
        assert!(!r.outcome.unwrap_err().contains('\u{7}'));
        let long = format!(
            r#"{{"server":{{"name":"{}"}},"data":{{"message":"m"}}}}"#,
            "x".repeat(10_000)
        );
        assert!(update_reply(long.as_bytes()).unwrap().server.name.len() <= 1024);
    }

    #[test]
    fn list_replies_keep_only_account_keys() {
        let acc = acc();
        #[allow(non_snake_case)]
        let ACC = acc.as_str();
        let l = format!(r#"{{"data":["{ACC}","junk",7,"{ACC}"],"server":{{"name":"n1"}}}}"#);
        let (s, keys) = list_reply(l.as_bytes()).unwrap();
        assert_eq!(s.name, "n1");
        assert_eq!(keys, vec![ACC.to_string()]);
        assert!(list_reply(br#"{"server":{"name":"n1"}}"#).is_err());
    }

    #[test]
    fn lookup_replies() {
        let acc = acc();
        #[allow(non_snake_case)]
        let ACC = acc.as_str();
        assert_eq!(lookup_reply(b"", ACC), Ok(None));
        assert!(lookup_reply(b"garbage", ACC).is_err());
    }
}
