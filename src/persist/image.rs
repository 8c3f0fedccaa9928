//! Conversions between in-memory collections / keys and their on-disk images.

use super::codec::{CollectionImage, DocImage, KeysImage};
use super::error::Damage;
use crate::auth::Scope;
use crate::store::{Collection, Doc, Series};
use std::sync::Arc;

/// What a checkpoint takes of a collection under its read lock: the handles of its documents
/// and a copy of its key/value entries. Then [`Held::image`] copies each document under the
/// document's own lock alone, so that a large collection's copy (seconds for millions of
/// records in sealed blocks) does not hold the collection's lock, which writes of several
/// documents, new documents and key/value changes need.
///
/// The image is then no single moment of the collection, as it already was not of its
/// documents (appends only read-lock the collection): every change logged before the log was
/// rotated for this checkpoint is in it (each was applied under the collection's or its
/// document's lock before that lock could be taken here), and a change logged after is
/// replayed over it at recovery, which gives the same result whether the image holds it or
/// not (an insert replaces a record of the same time, a deletion of what is gone deletes
/// nothing, a value is set again).
pub struct Held {
    name: String,
    docs: Vec<(String, Arc<Doc>)>,
    kv: Vec<(String, String)>,
}

impl Held {
    /// Takes the handles (under the collection's read lock, held by the caller).
    pub fn take(name: &str, c: &Collection) -> Held {
        Held {
            name: name.to_owned(),
            docs: c.docs.iter().map(|(n, d)| (n.clone(), d.clone())).collect(),
            kv: c.kv.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    /// Copies each document under its own lock (without the collection's).
    pub fn image(self) -> CollectionImage {
        CollectionImage {
            name: self.name,
            docs: self
                .docs
                .into_iter()
                .map(|(name, d)| {
                    let (ts, lens, data) = d.read().to_parts();
                    DocImage {
                        name,
                        ts,
                        lens,
                        data,
                    }
                })
                .collect(),
            kv: self.kv,
        }
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
