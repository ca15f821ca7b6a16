//! Cloudify's list parameters, read from the raw query: repeated keys
//! (`_sort=a&_sort=-b`) and comma lists (`_include=id,status`), which a
//! struct-shaped query cannot express. Every parameter must be understood:
//! one that would change the answer and is not supported is a 400 naming it,
//! never silently ignored. Every route reads its query here: those that take
//! none through [`NoQuery`], the plain lists through [`super::ListQuery`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::MAX_PAGE_SIZE;
use crate::error::AppError;

/// The most `_sort` keys accepted.
pub const MAX_SORT_KEYS: usize = 16;

/// The query's pairs, consumed as the handler reads them.
#[derive(Debug, Default)]
pub struct CloudifyQuery {
    pairs: Vec<(String, String)>,
}

impl CloudifyQuery {
    /// Decodes `raw` (the part after `?`). A NUL character (`%00`) in a name
    /// or a value is refused here, naming the parameter: no store can take it
    /// (PostgreSQL's text cannot hold one), so both refuse it alike.
    pub fn parse(raw: Option<&str>) -> Result<Self, AppError> {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or_default())
            .map_err(|error| AppError::BadRequest(format!("Malformed query string: {error}")))?;
        if let Some((key, _)) = pairs.iter().find(|(key, value)| key.contains('\0') || value.contains('\0')) {
            return Err(AppError::BadRequest(format!("{}: {}", key.escape_debug(), shared::error::NUL_REFUSED)));
        }
        Ok(Self { pairs })
    }

    /// Every value of `name`, each split at commas, in order; removed from the query.
    pub fn take_list(&mut self, name: &str) -> Vec<String> {
        let mut values = Vec::new();
        self.pairs.retain(|(key, value)| {
            if key != name {
                return true;
            }
            values.extend(value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned));
            false
        });
        values
    }

    /// The one value of `name`, if given; given twice is a 400.
    pub fn take_one(&mut self, name: &str) -> Result<Option<String>, AppError> {
        let mut found = None;
        for (key, value) in std::mem::take(&mut self.pairs) {
            if key != name {
                self.pairs.push((key, value));
            } else if found.replace(value).is_some() {
                return Err(AppError::BadRequest(format!("{name}: given more than once")));
            }
        }
        Ok(found)
    }

    /// `_size` (1 to 1000, default 1000) and `_offset` (default 0).
    pub fn take_paging(&mut self) -> Result<(u32, u64), AppError> {
        let size = match self.take_one("_size")? {
            None => MAX_PAGE_SIZE,
            Some(text) => {
                text.parse::<u32>().ok().filter(|size| (1..=MAX_PAGE_SIZE).contains(size)).ok_or_else(|| {
                    AppError::BadRequest(format!("_size: must be between 1 and {MAX_PAGE_SIZE}, got `{text}`"))
                })?
            }
        };
        let offset = match self.take_one("_offset")? {
            None => 0,
            Some(text) => text.parse::<u64>().map_err(|_| {
                AppError::BadRequest(format!("_offset: must be a whole number of items to skip, got `{text}`"))
            })?,
        };
        Ok((size, offset))
    }

    /// `_sort` keys (`-` for descending), parsed by `parse` (which names the
    /// accepted keys when it fails).
    pub fn take_sort<K>(
        &mut self,
        parse: impl Fn(&str) -> Option<K>,
        accepted: &str,
    ) -> Result<Vec<(K, bool)>, AppError> {
        let keys = self.take_list("_sort");
        // Every key is one of a few columns; more than this is a mistake, and
        // SQLite refuses an ORDER BY of over 2000 terms.
        if keys.len() > MAX_SORT_KEYS {
            return Err(AppError::BadRequest(format!("_sort: at most {MAX_SORT_KEYS} keys, got {}", keys.len())));
        }
        keys.iter()
            .map(|item| {
                let (name, descending) = match item.strip_prefix('-') {
                    Some(name) => (name, true),
                    None => (item.strip_prefix('+').unwrap_or(item), false),
                };
                parse(name).map(|key| (key, descending)).ok_or_else(|| {
                    AppError::BadRequest(format!("_sort: cannot sort by `{name}`; use one of {accepted}"))
                })
            })
            .collect()
    }

    /// Drops parameters whose every value leaves the answer as it is here
    /// (`harmless(name, value)`), then refuses whatever is left.
    pub fn finish(mut self, harmless: impl Fn(&str, &str) -> bool) -> Result<(), AppError> {
        self.pairs.retain(|(key, value)| !harmless(key, value));
        match self.pairs.first() {
            None => Ok(()),
            Some((key, _)) => Err(AppError::BadRequest(format!("{key}: this query parameter is not supported here"))),
        }
    }
}

/// The query of a route that takes no parameters: any is a 400 naming it
/// (e.g. `?dry_run=true` on activate, which would otherwise activate for real).
#[derive(Debug, Clone, Copy)]
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        CloudifyQuery::parse(parts.uri.query())?.finish(|_, _| false)?;
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_comma_separated_values_are_read_in_order() {
        let mut query = CloudifyQuery::parse(Some("_include=id,status&_sort=-created_at&_sort=id&x=1")).unwrap();
        assert_eq!(query.take_list("_include"), ["id", "status"]);
        let sort = query.take_sort(|name| Some(name.to_owned()), "").unwrap();
        assert_eq!(sort, [("created_at".to_owned(), true), ("id".to_owned(), false)]);
        let error = query.finish(|_, _| false).unwrap_err();
        assert!(error.to_string().starts_with("x:"), "{error}");
    }

    #[test]
    fn paging_is_checked_and_defaults_apply() {
        assert_eq!(CloudifyQuery::parse(None).unwrap().take_paging().unwrap(), (MAX_PAGE_SIZE, 0));
        let mut query = CloudifyQuery::parse(Some("_size=5&_offset=10")).unwrap();
        assert_eq!(query.take_paging().unwrap(), (5, 10));
        for bad in ["_size=0", "_size=1001", "_size=x", "_offset=-1", "_size=1&_size=2"] {
            assert!(CloudifyQuery::parse(Some(bad)).unwrap().take_paging().is_err(), "{bad}");
        }
    }

    #[test]
    fn too_many_sort_keys_are_a_bad_request() {
        let many = vec!["id"; MAX_SORT_KEYS + 1].join(",");
        let error =
            CloudifyQuery::parse(Some(&format!("_sort={many}"))).unwrap().take_sort(|_| Some(()), "").unwrap_err();
        assert!(error.to_string().starts_with("_sort: at most"), "{error}");
    }

    #[test]
    fn unknown_sort_keys_are_refused_with_the_accepted_ones() {
        let mut query = CloudifyQuery::parse(Some("_sort=colour")).unwrap();
        let error = query.take_sort(|_| None::<()>, "`id`").unwrap_err().to_string();
        assert!(error.contains("colour") && error.contains("`id`"), "{error}");
    }
}
