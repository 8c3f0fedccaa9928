//! The few XML answers the S3 client reads: a `ListObjectsV2` page and an error body. They are
//! flat documents with known element names, so a small scanner does: it finds `<Name>…</Name>`
//! spans in order (the elements read here never nest in themselves) and decodes the five
//! predefined entities and numeric character references.

/// One page of a `ListObjectsV2` answer.
#[derive(Debug, PartialEq, Eq)]
pub struct ListPage {
    /// Full keys (with the location's prefix) and sizes, in the order the store gave them.
    pub objects: Vec<(String, u64)>,
    /// The token that asks for the next page, when the listing is truncated.
    pub next: Option<String>,
}

/// The inner text of every `<tag>…</tag>` in `xml`, in document order.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

fn first<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    elements(xml, tag).into_iter().next()
}

/// Decodes XML character data: `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#N;`, `&#xH;`.
/// `None` for a malformed reference.
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';')?;
        let name = &after[..semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Parses a `ListObjectsV2` page; `Err` names what is missing or malformed.
pub fn parse_list(xml: &str) -> Result<ListPage, String> {
    if !xml.contains("<ListBucketResult") {
        return Err("not a ListBucketResult document".into());
    }
    let mut objects = Vec::new();
    for entry in elements(xml, "Contents") {
        let key = first(entry, "Key").ok_or("a Contents entry without a Key")?;
        let key = unescape(key).ok_or_else(|| format!("a malformed Key {key:?}"))?;
        let size = first(entry, "Size").ok_or("a Contents entry without a Size")?;
        let size = size
            .trim()
            .parse()
            .map_err(|_| format!("a malformed Size {size:?}"))?;
        objects.push((key, size));
    }
    let truncated = first(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next = if truncated {
        let token = first(xml, "NextContinuationToken")
            .ok_or("a truncated listing without a NextContinuationToken")?;
        Some(unescape(token).ok_or("a malformed NextContinuationToken")?)
    } else {
        None
    };
    Ok(ListPage { objects, next })
}

/// `Code: Message` of an S3 error body, or the start of the body when it is not one.
pub fn error_message(body: &str) -> String {
    let field = |tag| first(body, tag).and_then(unescape);
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => {
            let text = body.trim();
            match text.char_indices().nth(200) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None if text.is_empty() => "(no error body)".into(),
                None => text.to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_page() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/a&amp;b</Key><LastModified>2026-01-01T00:00:00Z</LastModified><ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>p/c&#x2F;d</Key><Size>0</Size></Contents>
<NextContinuationToken>tok&lt;1&gt;</NextContinuationToken></ListBucketResult>"#;
        assert_eq!(
            parse_list(xml),
            Ok(ListPage {
                objects: vec![("p/a&b".into(), 12), ("p/c/d".into(), 0)],
                next: Some("tok<1>".into()),
            })
        );
    }

    #[test]
    fn the_last_page_and_bad_documents() {
        let xml = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(
            parse_list(xml),
            Ok(ListPage {
                objects: vec![],
                next: None
            })
        );
        assert!(parse_list("<Error/>").is_err());
        assert!(parse_list(
            "<ListBucketResult><Contents><Key>k</Key><Size>x</Size></Contents></ListBucketResult>"
        )
        .is_err());
        assert!(
            parse_list("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .is_err()
        );
        assert!(parse_list(
            "<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size></Contents></ListBucketResult>"
        )
        .is_err());
    }

    #[test]
    fn error_bodies() {
        let xml = "<Error><Code>AccessDenied</Code><Message>Access &amp; denied</Message></Error>";
        assert_eq!(error_message(xml), "AccessDenied: Access & denied");
        assert_eq!(error_message(""), "(no error body)");
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }
}
