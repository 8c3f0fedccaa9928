//! Where and how the S3 client connects: endpoint, region, credentials, addressing style and
//! timeouts, read from the usual AWS variables.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `AWS_ENDPOINT_URL` | `http(s)://host[:port]` of an S3-compatible store; unset: AWS itself |
//! | `AWS_REGION` (or `AWS_DEFAULT_REGION`) | signing region, default `us-east-1` |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | required |
//! | `AWS_SESSION_TOKEN` | sent when set (temporary credentials) |
//! | `AWS_S3_FORCE_PATH_STYLE` | `true`: `host/bucket/key`; `false`: `bucket.host/key` |
//!
//! Path style is the default when `AWS_ENDPOINT_URL` is set (self-hosted stores rarely have a
//! wildcard DNS name per bucket), virtual-hosted style otherwise (what AWS wants).

use super::sigv4::Credentials;
use super::Error;
use std::time::Duration;

/// How long connecting (name resolution, TCP, TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write on the connection may stall; a transfer that keeps moving is
/// never cut, a store that stops answering is given up on after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Objects per `ListObjectsV2` page (the S3 maximum).
pub const LIST_PAGE: u32 = 1000;

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `true` for `https://`.
    pub https: bool,
    /// `host[:port]` of the endpoint, as written in the URL.
    pub authority: String,
    pub region: String,
    pub credentials: Credentials,
    /// `host/bucket/key` instead of `bucket.host/key`.
    pub path_style: bool,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// `max-keys` of each listing request.
    pub list_page: u32,
}

impl S3Config {
    /// From the process environment.
    pub fn from_env() -> Result<S3Config, Error> {
        S3Config::from_vars(|name| std::env::var(name).ok())
    }

    /// From `var(name)` lookups (the environment, or a test's table); empty counts as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<S3Config, Error> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        if !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::Config(format!(
                "AWS_REGION {region:?} is not a region name"
            )));
        }
        let need = |name: &str| {
            var(name).ok_or_else(|| {
                Error::Config(format!("{name} is not set (needed for an s3:// location)"))
            })
        };
        let credentials = Credentials {
            access_key: need("AWS_ACCESS_KEY_ID")?,
            secret_key: need("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        };
        let endpoint = var("AWS_ENDPOINT_URL");
        let path_style = match var("AWS_S3_FORCE_PATH_STYLE").as_deref().map(str::trim) {
            None => endpoint.is_some(),
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => {
                return Err(Error::Config(format!(
                    "AWS_S3_FORCE_PATH_STYLE must be true or false, not {other:?}"
                )))
            }
        };
        let (https, authority) = match endpoint {
            Some(url) => parse_endpoint(&url)?,
            None => (true, format!("s3.{region}.amazonaws.com")),
        };
        Ok(S3Config {
            https,
            authority,
            region,
            credentials,
            path_style,
            connect_timeout: CONNECT_TIMEOUT,
            io_timeout: IO_TIMEOUT,
            list_page: LIST_PAGE,
        })
    }
}

/// `http(s)://host[:port][/]` → (is https, `host[:port]`).
fn parse_endpoint(url: &str) -> Result<(bool, String), Error> {
    let bad = |why: &str| Error::Config(format!("AWS_ENDPOINT_URL {url:?}: {why}"));
    let url = url.trim();
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad("expected http://HOST[:PORT] or https://HOST[:PORT]"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains(['/', '?', '#', '@']) || authority.contains(char::is_whitespace) {
        return Err(bad("only a scheme, a host and a port are supported"));
    }
    Ok((https, authority.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<S3Config, Error> {
        S3Config::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    const KEYS: [(&str, &str); 2] = [
        ("AWS_ACCESS_KEY_ID", "id"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];

    #[test]
    fn aws_by_default() -> Result<(), Error> {
        let c = config(&KEYS)?;
        assert!(c.https);
        assert_eq!(c.authority, "s3.us-east-1.amazonaws.com");
        assert_eq!(c.region, "us-east-1");
        assert!(!c.path_style);
        assert!(c.credentials.session_token.is_none());
        let c = config(&[KEYS[0], KEYS[1], ("AWS_DEFAULT_REGION", "eu-west-3")])?;
        assert_eq!(c.authority, "s3.eu-west-3.amazonaws.com");
        Ok(())
    }

    #[test]
    fn an_endpoint_means_path_style_unless_told() -> Result<(), Error> {
        let c = config(&[
            KEYS[0],
            KEYS[1],
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8333/"),
            ("AWS_REGION", "local"),
            ("AWS_SESSION_TOKEN", "tok"),
        ])?;
        assert!(!c.https);
        assert_eq!(c.authority, "127.0.0.1:8333");
        assert!(c.path_style);
        assert_eq!(c.credentials.session_token.as_deref(), Some("tok"));
        let c = config(&[
            KEYS[0],
            KEYS[1],
            ("AWS_ENDPOINT_URL", "https://s3.example.com"),
            ("AWS_S3_FORCE_PATH_STYLE", "false"),
        ])?;
        assert!(c.https && !c.path_style);
        let c = config(&[KEYS[0], KEYS[1], ("AWS_S3_FORCE_PATH_STYLE", "true")])?;
        assert!(c.path_style);
        Ok(())
    }

    #[test]
    fn unusable_settings_are_config_errors() {
        let msg = |r: Result<S3Config, Error>| match r {
            Err(Error::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(
            msg(config(&[KEYS[1]])),
            "AWS_ACCESS_KEY_ID is not set (needed for an s3:// location)"
        );
        assert_eq!(
            msg(config(&[KEYS[0]])),
            "AWS_SECRET_ACCESS_KEY is not set (needed for an s3:// location)"
        );
        assert!(
            msg(config(&[KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL", "ftp://x")]))
                .starts_with("AWS_ENDPOINT_URL \"ftp://x\"")
        );
        assert!(msg(config(&[
            KEYS[0],
            KEYS[1],
            ("AWS_ENDPOINT_URL", "http://x/base")
        ]))
        .contains("only a scheme, a host and a port"));
        assert!(msg(config(&[
            KEYS[0],
            KEYS[1],
            ("AWS_S3_FORCE_PATH_STYLE", "yes")
        ]))
        .contains("true or false"));
        assert!(msg(config(&[KEYS[0], KEYS[1], ("AWS_REGION", "a/b")])).contains("region"));
    }
}
