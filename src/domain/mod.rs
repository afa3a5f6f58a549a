//! The rules of the domain as plain types and functions: no diesel, no actix.
//! Each file is named after the thing it governs (DOMAIN.md's words).

pub mod audit;
pub mod bed;
pub mod care_team;
pub mod case;
pub mod codes;
pub mod cover;
pub mod ids;
pub mod organization;
pub mod patient;
pub mod practitioner;
pub mod schedule;
pub mod screening;
pub mod text;
pub mod time;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::FieldError;

/// One member of a JSON merge patch (RFC 7396): absent leaves the value as it is, `null`
/// clears it, a value replaces it. Use with `#[serde(default)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Patch::Null,
            Some(v) => Patch::Value(v),
        })
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Absent | Patch::Null => s.serialize_none(),
            Patch::Value(v) => v.serialize(s),
        }
    }
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

/// A required member of a create body: reports `required` when it is absent.
pub(crate) fn required<T>(errors: &mut Vec<FieldError>, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        errors.push(FieldError::new(field, "required", "is required"));
    }
    value
}

/// A required member of a merge patch: absent leaves it, `null` is refused.
pub(crate) fn required_patch<T>(errors: &mut Vec<FieldError>, field: &str, value: Patch<T>) -> Option<T> {
    match value {
        Patch::Absent => None,
        Patch::Null => {
            errors.push(organization::cannot_clear(field));
            None
        }
        Patch::Value(v) => Some(v),
    }
}
