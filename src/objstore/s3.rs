//! `s3://bucket/prefix`: objects in an S3-compatible store, over HTTP(S) with SigV4-signed
//! requests. Blocking: one request at a time per calling thread, on a shared connection pool.
//!
//! Answers map to the module's errors: 412 (and 404 `NoSuchKey` to an `If-Match` write) is
//! [`Error::PreconditionFailed`]; 404 is "no such object" for `get` and `delete`; 409 (a
//! conditional write racing another one), 429 and 5xx are [`Error::Unavailable`] like every
//! transport failure and timeout; any other 4xx is [`Error::Rejected`] with the store's error
//! code and message. Nothing is retried here: the callers (background threads) decide.
//!
//! Entity tags are kept exactly as the store sends them (quotes included) and sent back so in
//! `If-Match`. Small bodies (manifests, restore points) are signed (`x-amz-content-sha256` is
//! their SHA-256); bodies over [`SIGNED_BODY_LIMIT`] (segments, snapshots) are sent as
//! `UNSIGNED-PAYLOAD`: hashing them cost the uploader and the store a pass over every byte,
//! and their readers check the CRC-32 their key names anyway (the headers, the key and the
//! condition stay signed). Timeouts: see
//! [`S3Config`]; a stopped store fails a call at once (connection refused), a frozen one after
//! `io_timeout` without progress.

use super::s3_config::S3Config;
use super::s3_xml::{error_message, parse_list};
use super::sigv4::{amz_date, authorization, canonical_query, sha256_hex, uri_encode, Request};
use super::{valid_key, Condition, Error, Listed, Object, ObjectStore};
use std::time::SystemTime;
use ureq::http;

/// The largest object body read back (S3's limit for one PUT).
const MAX_BODY: u64 = 5 << 30;
/// The most of an error answer's body read for its message.
const MAX_ERROR_BODY: u64 = 64 << 10;
/// Bodies up to this size are signed (their SHA-256 is part of the signature); larger ones are
/// sent as `UNSIGNED-PAYLOAD`.
const SIGNED_BODY_LIMIT: usize = 64 << 10;
/// The `x-amz-content-sha256` value of a body left out of the signature.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

pub struct S3Store {
    config: S3Config,
    bucket: String,
    /// The location's prefix followed by `/`, or empty.
    base: String,
    agent: ureq::Agent,
}

/// What a request came back with.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
}

fn transport_error(what: &str, e: ureq::Error) -> Error {
    match e {
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::InvalidProxyUrl => {
            Error::Config(format!("{what}: {e}"))
        }
        _ => Error::Unavailable(format!("{what}: {e}")),
    }
}

impl S3Store {
    /// A store for `bucket` under `prefix` (no slashes at either end; may be empty). Connects
    /// lazily: an unreachable store shows at the first call.
    pub fn new(config: S3Config, bucket: &str, prefix: &str) -> Result<S3Store, Error> {
        let dns_safe = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        if !dns_safe(bucket) {
            return Err(Error::Config(format!(
                "s3://{bucket}: a bucket name is made of letters, digits, '.', '-' and '_'"
            )));
        }
        let prefix = prefix.trim_matches('/');
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("fluxiondb/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(Some(config.connect_timeout))
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(Some(config.io_timeout))
            .timeout_per_write(Some(config.io_timeout))
            .build();
        Ok(S3Store {
            agent: ureq::Agent::new_with_config(agent_config),
            bucket: bucket.to_owned(),
            base: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            config,
        })
    }

    /// Creates the bucket (`CreateBucket`); a bucket that exists already and is ours is fine.
    /// For test setups and first runs against a fresh self-hosted store.
    pub fn create_bucket(&self) -> Result<(), Error> {
        // Outside us-east-1, AWS wants the region named in the body too.
        let body = if self.config.region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.config.region
            )
        };
        let answer = self.send("PUT", None, &[], &Condition::Always, Some(body.as_bytes()))?;
        let owned = answer.status == 409
            && String::from_utf8_lossy(&answer.body).contains("BucketAlreadyOwnedByYou");
        if (200..300).contains(&answer.status) || owned {
            Ok(())
        } else {
            Err(self.failure(&format!("create bucket {}", self.bucket), &answer))
        }
    }

    fn full_key(&self, key: &str) -> Result<String, Error> {
        if valid_key(key) {
            Ok(format!("{}{key}", self.base))
        } else {
            Err(Error::Config(format!("invalid object key {key:?}")))
        }
    }

    /// Sends one signed request for `key` (`None`: the bucket itself) and reads the answer.
    fn send(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        condition: &Condition,
        body: Option<&[u8]>,
    ) -> Result<Answer, Error> {
        let encoded_key = uri_encode(key.unwrap_or(""), true);
        let (host, path) = if self.config.path_style {
            let path = match key {
                Some(_) => format!("/{}/{encoded_key}", self.bucket),
                None => format!("/{}", self.bucket),
            };
            (self.config.authority.clone(), path)
        } else {
            (
                format!("{}.{}", self.bucket, self.config.authority),
                format!("/{encoded_key}"),
            )
        };
        let query = canonical_query(query);
        let body_bytes = body.unwrap_or_default();
        let payload_sha256 = if body_bytes.len() > SIGNED_BODY_LIMIT {
            UNSIGNED_PAYLOAD.to_owned()
        } else {
            sha256_hex(body_bytes)
        };
        let date = amz_date(SystemTime::now());
        let mut headers: Vec<(&str, &str)> = vec![
            ("host", host.as_str()),
            ("x-amz-content-sha256", payload_sha256.as_str()),
            ("x-amz-date", date.as_str()),
        ];
        if key.is_some() && body.is_some() {
            // Said outright: the store then keeps the bytes as they are (SeaweedFS gzips an
            // object of unknown type whose first bytes compress, which costs its CPU on every
            // segment and gains nothing on packed ones).
            headers.push(("content-type", "application/octet-stream"));
        }
        match condition {
            Condition::Always => {}
            Condition::IfAbsent => headers.push(("if-none-match", "*")),
            Condition::IfMatch(etag) => headers.push(("if-match", etag.as_str())),
        }
        if let Some(token) = &self.config.credentials.session_token {
            headers.push(("x-amz-security-token", token.as_str()));
        }
        headers.sort_unstable();
        let auth = authorization(
            &self.config.credentials,
            &self.config.region,
            &date,
            &Request {
                method,
                path: &path,
                query: &query,
                headers: &headers,
                payload_sha256: &payload_sha256,
            },
        );
        let scheme = if self.config.https { "https" } else { "http" };
        let url = if query.is_empty() {
            format!("{scheme}://{host}{path}")
        } else {
            format!("{scheme}://{host}{path}?{query}")
        };
        let what = format!("{method} s3://{}/{}", self.bucket, key.unwrap_or(""));
        let mut builder = http::Request::builder().method(method).uri(&url);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        builder = builder.header("authorization", &auth);
        let sent = match body {
            Some(body) => builder
                .body(body)
                .map_err(|e| Error::Config(format!("{what}: {e}")))
                .and_then(|req| self.agent.run(req).map_err(|e| transport_error(&what, e))),
            None => builder
                .body(())
                .map_err(|e| Error::Config(format!("{what}: {e}")))
                .and_then(|req| self.agent.run(req).map_err(|e| transport_error(&what, e))),
        };
        let mut response = sent?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let limit = if (200..300).contains(&status) {
            MAX_BODY
        } else {
            MAX_ERROR_BODY
        };
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| transport_error(&format!("{what}: reading the answer"), e))?;
        Ok(Answer { status, etag, body })
    }

    /// The error for an answer that is not the success (or the 404) the caller handles.
    fn failure(&self, what: &str, answer: &Answer) -> Error {
        let message = error_message(&String::from_utf8_lossy(&answer.body));
        match answer.status {
            412 => Error::PreconditionFailed,
            409 | 429 | 500..=599 => {
                Error::Unavailable(format!("{what}: HTTP {}: {message}", answer.status))
            }
            status => Error::Rejected {
                status,
                message: format!("{what}: {message}"),
            },
        }
    }
}

impl ObjectStore for S3Store {
    fn put(&self, key: &str, body: &[u8], cond: &Condition) -> Result<String, Error> {
        let full = self.full_key(key)?;
        let answer = self.send("PUT", Some(&full), &[], cond, Some(body))?;
        // If-Match on a key without an object: AWS answers 404 NoSuchKey; the condition did
        // not hold all the same.
        let no_such_key = answer.status == 404
            && String::from_utf8_lossy(&answer.body).contains("<Code>NoSuchKey</Code>");
        if no_such_key && matches!(cond, Condition::IfMatch(_)) {
            return Err(Error::PreconditionFailed);
        }
        if !(200..300).contains(&answer.status) {
            return Err(self.failure(&format!("put {key}"), &answer));
        }
        answer.etag.ok_or_else(|| {
            Error::Unavailable(format!("put {key}: the store answered without an ETag"))
        })
    }

    fn get(&self, key: &str) -> Result<Option<Object>, Error> {
        let full = self.full_key(key)?;
        let answer = self.send("GET", Some(&full), &[], &Condition::Always, None)?;
        match answer.status {
            404 => Ok(None),
            200 => {
                let etag = answer.etag.ok_or_else(|| {
                    Error::Unavailable(format!("get {key}: the store answered without an ETag"))
                })?;
                Ok(Some(Object {
                    body: answer.body,
                    etag,
                }))
            }
            _ => Err(self.failure(&format!("get {key}"), &answer)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, Error> {
        let full_prefix = format!("{}{prefix}", self.base);
        let page_size = self.config.list_page.to_string();
        let mut token: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let mut query = vec![
                ("list-type", "2"),
                ("max-keys", page_size.as_str()),
                ("prefix", full_prefix.as_str()),
            ];
            if let Some(token) = &token {
                query.push(("continuation-token", token));
            }
            let answer = self.send("GET", None, &query, &Condition::Always, None)?;
            let what = format!("list {prefix:?}");
            if answer.status != 200 {
                return Err(self.failure(&what, &answer));
            }
            let page = parse_list(&String::from_utf8_lossy(&answer.body))
                .map_err(|why| Error::Unavailable(format!("{what}: {why}")))?;
            for (key, size) in page.objects {
                if let Some(rel) = key.strip_prefix(&self.base) {
                    out.push(Listed {
                        key: rel.to_owned(),
                        size,
                    });
                }
            }
            match page.next {
                // A store that hands back the token it was given would loop forever.
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                Some(_) => {
                    return Err(Error::Unavailable(format!(
                        "{what}: the store repeated its continuation token"
                    )))
                }
                None => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), Error> {
        let full = self.full_key(key)?;
        let answer = self.send("DELETE", Some(&full), &[], &Condition::Always, None)?;
        match answer.status {
            200..=299 | 404 => Ok(()),
            _ => Err(self.failure(&format!("delete {key}"), &answer)),
        }
    }
}
