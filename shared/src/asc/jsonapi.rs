//! Just enough JSON:API to read App Store Connect documents: primary data, `included`
//! resources resolved through relationships, `links.next` and `meta.paging`.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::AscError;

#[derive(Debug, Deserialize)]
pub(crate) struct Document {
    #[serde(default)]
    pub data: PrimaryData,
    #[serde(default)]
    pub included: Vec<Resource>,
    #[serde(default)]
    pub links: Option<DocumentLinks>,
    #[serde(default)]
    pub meta: Option<Meta>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub(crate) enum PrimaryData {
    Many(Vec<Resource>),
    One(Box<Resource>),
    #[default]
    Null,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DocumentLinks {
    pub next: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Meta {
    pub paging: Option<Paging>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Paging {
    pub total: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    #[serde(default)]
    pub relationships: HashMap<String, Relationship>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Relationship {
    #[serde(default)]
    pub data: Linkage,
    #[serde(default)]
    pub meta: Option<Meta>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub(crate) enum Linkage {
    Many(Vec<Identifier>),
    One(Identifier),
    #[default]
    Null,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Identifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl Document {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, AscError> {
        serde_json::from_slice(body)
            .map_err(|e| AscError::Decode(format!("not a JSON:API document ({e})")))
    }

    pub(crate) fn into_many(self) -> Result<(Vec<Resource>, Included), AscError> {
        let included = Included::new(self.included);
        match self.data {
            PrimaryData::Many(items) => Ok((items, included)),
            PrimaryData::Null => Err(AscError::Decode("`data` is missing".into())),
            PrimaryData::One(_) => Err(AscError::Decode(
                "expected a list in `data`, got one resource".into(),
            )),
        }
    }

    pub(crate) fn next_link(&self) -> Option<&str> {
        self.links.as_ref()?.next.as_deref()
    }

    pub(crate) fn total(&self) -> Option<u64> {
        self.meta.as_ref()?.paging.as_ref()?.total
    }
}

/// `included` resources, looked up by (type, id).
#[derive(Debug, Default)]
pub(crate) struct Included {
    by_identity: HashMap<(String, String), Resource>,
}

impl Included {
    fn new(resources: Vec<Resource>) -> Self {
        Self {
            by_identity: resources
                .into_iter()
                .map(|r| ((r.kind.clone(), r.id.clone()), r))
                .collect(),
        }
    }

    pub(crate) fn get(&self, identifier: &Identifier) -> Option<&Resource> {
        self.by_identity
            .get(&(identifier.kind.clone(), identifier.id.clone()))
    }

    pub(crate) fn extend(&mut self, other: Included) {
        self.by_identity.extend(other.by_identity);
    }
}

impl Resource {
    /// The attributes as a typed struct (missing attributes become `None` / defaults there).
    pub(crate) fn attributes<T: DeserializeOwned>(&self) -> Result<T, AscError> {
        serde_json::from_value(Value::Object(self.attributes.clone())).map_err(|e| {
            AscError::Decode(format!(
                "{} {} has unexpected attributes ({e})",
                self.kind, self.id
            ))
        })
    }

    pub(crate) fn to_one(&self, name: &str) -> Option<&Identifier> {
        match &self.relationships.get(name)?.data {
            Linkage::One(identifier) => Some(identifier),
            _ => None,
        }
    }

    pub(crate) fn to_many(&self, name: &str) -> &[Identifier] {
        match self.relationships.get(name).map(|r| &r.data) {
            Some(Linkage::Many(identifiers)) => identifiers,
            _ => &[],
        }
    }

    /// `meta.paging.total` of a to-many relationship, when Apple reports it.
    pub(crate) fn relationship_total(&self, name: &str) -> Option<u64> {
        self.relationships
            .get(name)?
            .meta
            .as_ref()?
            .paging
            .as_ref()?
            .total
    }
}
