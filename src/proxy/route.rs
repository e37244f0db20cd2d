//! Which inventory host a request is for.
//!
//! The host comes from the URL path (`/wsman/<name>`), else the token's target claim, else
//! the configured default. The query is not part of the path: PowerShell 7's
//! `/wsman?PSVersion=7.x` (also after a host name) routes like `/wsman`, and the host gets
//! the inventory's own URL. It is only ever a *name* looked up in the inventory: nothing a
//! client sends is used as an address.

use crate::error::Refusal;

/// The WS-Man part of a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsmanPath<'a> {
    /// `/wsman`: the target comes from the token or the default.
    Plain,
    /// `/wsman/<name>`.
    Host(&'a str),
}

/// Reads the request path; anything but `/wsman` or `/wsman/<name>` is not ours.
pub fn parse_path(path: &str) -> Option<WsmanPath<'_>> {
    let rest = path.strip_prefix("/wsman")?;
    match rest {
        "" | "/" => Some(WsmanPath::Plain),
        _ => {
            let name = rest.strip_prefix('/')?.trim_end_matches('/');
            if name.is_empty() || name.contains('/') {
                None
            } else {
                Some(WsmanPath::Host(name))
            }
        }
    }
}

/// Picks the target host name: path, then token claim, then default.
pub fn choose<'a>(
    path: &WsmanPath<'a>,
    token_target: Option<&'a str>,
    default: Option<&'a str>,
) -> Result<&'a str, Refusal> {
    match path {
        WsmanPath::Host(name) => Ok(name),
        WsmanPath::Plain => token_target.or(default).ok_or(Refusal::NoTarget),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/wsman"), Some(WsmanPath::Plain));
        assert_eq!(parse_path("/wsman/"), Some(WsmanPath::Plain));
        assert_eq!(parse_path("/wsman/web1"), Some(WsmanPath::Host("web1")));
        assert_eq!(parse_path("/wsman/web1/"), Some(WsmanPath::Host("web1")));
        assert_eq!(parse_path("/wsman/a/b"), None);
        assert_eq!(parse_path("/wsmanx"), None);
        assert_eq!(parse_path("/other"), None);
        assert_eq!(parse_path("/wsman-anon/identify"), None);
    }

    #[test]
    fn path_beats_token_beats_default() {
        let p = WsmanPath::Host("a");
        assert_eq!(choose(&p, Some("b"), Some("c")), Ok("a"));
        assert_eq!(choose(&WsmanPath::Plain, Some("b"), Some("c")), Ok("b"));
        assert_eq!(choose(&WsmanPath::Plain, None, Some("c")), Ok("c"));
        assert_eq!(
            choose(&WsmanPath::Plain, None, None),
            Err(Refusal::NoTarget)
        );
    }
}
