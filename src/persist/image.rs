//! Conversions between in-memory collections / keys and their on-disk images.

use super::codec::{CollectionImage, DocImage, KeysImage};
use super::error::Damage;
use crate::auth::Scope;
use crate::store::{Collection, Series};

/// Copies a collection (under its read lock, each document under its own: a few large memory
/// copies).
pub fn collection_image(name: &str, c: &Collection) -> CollectionImage {
    CollectionImage {
        name: name.to_owned(),
        docs: c
            .docs
            .iter()
            .map(|(doc, d)| {
                let (ts, lens, data) = d.read().to_parts();
                DocImage {
                    name: doc.clone(),
                    ts,
                    lens,
                    data,
                }
            })
            .collect(),
        kv: c.kv.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

/// Rebuilds a collection from its image.
pub fn collection_from_image(image: CollectionImage) -> Result<(String, Collection), Damage> {
    let mut c = Collection::default();
    for doc in image.docs {
        let series =
            Series::from_parts(doc.ts, doc.lens, doc.data).map_err(|e| Damage::BadDocument {
                doc: doc.name.clone(),
                why: e.to_string(),
            })?;
        if !series.is_empty() {
            c.load_doc(doc.name, series);
        }
    }
    c.kv.extend(image.kv);
    c.recount();
    Ok((image.name, c))
}

pub fn keys_image(keys: &[(String, Scope)]) -> KeysImage {
    KeysImage {
        keys: keys.iter().map(|(k, s)| (k.clone(), *s as u8)).collect(),
    }
}

pub fn keys_from_image(image: KeysImage) -> Result<Vec<(String, Scope)>, Damage> {
    image
        .keys
        .into_iter()
        .map(|(k, s)| match s {
            0 => Ok((k, Scope::ReadOnly)),
            1 => Ok((k, Scope::ReadWrite)),
            2 => Ok((k, Scope::ReadWriteDelete)),
            other => Err(Damage::UnknownScope(other)),
        })
        .collect()
}
