//! Keyset pagination: `?limit=` (1–200, default 50) and an opaque `?cursor=` naming the last
//! item seen. Never OFFSET (it grows with the page number), never an exact count.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// The sort key of the last item of the previous page.
    pub after: Option<String>,
}

impl PageRequest {
    /// Parses `limit` and `cursor`; bad values are 400, never clamped silently.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid_field(
                        "limit",
                        "out_of_range",
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    ))
                }
            },
        };
        let after = cursor.map(decode_cursor).transpose()?;
        Ok(PageRequest { limit, after })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Cuts the fetched rows to the page and makes the next cursor from the last one.
    pub fn finish<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let more = items.len() > self.limit as usize;
        items.truncate(self.limit as usize);
        let next_cursor = if more { items.last().map(|last| encode_cursor(&key(last))) } else { None };
        Page { items, next_cursor }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("k1:{key}"))
}

fn decode_cursor(raw: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_field("cursor", "invalid_cursor", "is not a cursor this server issued");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let key = text.strip_prefix("k1:").ok_or_else(invalid)?;
    // Every list is keyed by a UUID today; anything else did not come from us.
    uuid::Uuid::parse_str(key).map_err(|_| invalid())?;
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_not_clamped() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert_eq!(PageRequest::parse(Some("200"), None).unwrap().limit, 200);
        for bad in ["0", "201", "-1", "abc", ""] {
            assert_eq!(PageRequest::parse(Some(bad), None).unwrap_err().code(), "validation_failed", "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let id = uuid::Uuid::now_v7().to_string();
        let page = PageRequest { limit: 1, after: None }.finish(vec![id.clone(), "b".into()], Clone::clone);
        let cursor = page.next_cursor.unwrap();
        assert_eq!(PageRequest::parse(None, Some(&cursor)).unwrap().after, Some(id));
        assert!(PageRequest::parse(None, Some("not-a-cursor")).is_err());
        assert!(PageRequest::parse(None, Some(&URL_SAFE_NO_PAD.encode("k1:' OR 1=1"))).is_err());
    }

    #[test]
    fn last_page_has_no_cursor() {
        let page = PageRequest { limit: 2, after: None }.finish(vec![1, 2], |n| n.to_string());
        assert_eq!(page.next_cursor, None);
    }
}
