//! Compose's variable interpolation (`$NAME`, `${NAME:-default}`,
//! `${NAME:?error}`, …), as `docker compose` applies it to the files before
//! it reads them: for one string and for a whole document.

use super::*;

/// Compose's interpolation of one string: `$$` is a `$`; `$NAME`,
/// `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`,
/// `${NAME?error}`, `${NAME:+other}`, `${NAME+other}` (nested in the
/// default too). Records every name used in `used`.
pub fn interpolate_str(
    text: &str,
    vars: &BTreeMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = after.strip_prefix('{') {
            let close = closing_brace(inner).ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let body = &inner[..close];
            let len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            let (name, op) = body.split_at(len);
            if !is_var_name(name) {
                return Err(format!("bad variable name in ${{{body}}} of {text:?}"));
            }
            used.insert(name.to_owned());
            let value = vars.get(name);
            let set = value.is_some();
            let nonempty = value.is_some_and(|v| !v.is_empty());
            let mut word = |w: &str| interpolate_str(w, vars, used);
            let result = if op.is_empty() {
                value.cloned().unwrap_or_default()
            } else if let Some(default) = op.strip_prefix(":-") {
                if nonempty {
                    value.cloned().unwrap_or_default()
                } else {
                    word(default)?
                }
            } else if let Some(default) = op.strip_prefix('-') {
                if set {
                    value.cloned().unwrap_or_default()
                } else {
                    word(default)?
                }
            } else if let Some(message) = op.strip_prefix(":?") {
                if !nonempty {
                    return Err(format!("{name} is required: {message}"));
                }
                value.cloned().unwrap_or_default()
            } else if let Some(message) = op.strip_prefix('?') {
                if !set {
                    return Err(format!("{name} is required: {message}"));
                }
                value.cloned().unwrap_or_default()
            } else if let Some(other) = op.strip_prefix(":+") {
                if nonempty {
                    word(other)?
                } else {
                    String::new()
                }
            } else if let Some(other) = op.strip_prefix('+') {
                if set { word(other)? } else { String::new() }
            } else {
                return Err(format!("bad interpolation ${{{body}}} in {text:?}"));
            };
            out.push_str(&result);
            rest = &inner[close + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            if is_var_name(name) {
                used.insert(name.to_owned());
                out.push_str(vars.get(name).map_or("", String::as_str));
                rest = &after[len..];
            } else {
                return Err(format!(
                    "a lone `$` in {text:?}: write `$$` for a literal dollar"
                ));
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The `}` closing a `${` whose body starts `text`, nested `${…}` skipped.
pub fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 1;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Interpolates every string value (not keys) of a document.
pub fn interpolate_value(
    value: &Value,
    vars: &BTreeMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(interpolate_str(s, vars, used)?),
        Value::Array(list) => Value::Array(
            list.iter()
                .map(|v| interpolate_value(v, vars, used))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), interpolate_value(v, vars, used)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

pub fn is_var_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
