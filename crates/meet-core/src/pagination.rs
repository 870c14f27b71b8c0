//! DRF's page-number pagination (api.md §1.5): `?page=N` (or `last`), 20
//! items, absolute `next`/`previous` links that keep the other parameters.

use serde_json::{json, Value};

use crate::auth::session::request_origin;
use crate::error::ApiError;
use crate::http::ApiRequest;

pub const PAGE_SIZE: u64 = 20;

/// The page asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRequest {
    Number(u64),
    Last,
}

impl PageRequest {
    pub fn from_request(request: &ApiRequest) -> Result<PageRequest, ApiError> {
        match request.query_param("page") {
            None => Ok(PageRequest::Number(1)),
            Some(text) if text == "last" => Ok(PageRequest::Last),
            Some(text) => match text.parse::<u64>() {
                Ok(number) if number >= 1 => Ok(PageRequest::Number(number)),
                _ => Err(invalid_page()),
            },
        }
    }
}

pub fn invalid_page() -> ApiError {
    ApiError::NotFoundDetail("Invalid page.".into())
}

/// Loads one page through `fetch(limit, offset) -> (total, items)`: one
/// statement, or two for `page=last`.
pub fn paginate<T, E>(
    request: &ApiRequest,
    page_size: u64,
    fetch: impl Fn(u64, u64) -> Result<(u64, Vec<T>), E>,
    render: impl Fn(&T) -> Value,
) -> Result<Value, ApiError>
where
    ApiError: From<E>,
{
    let number = match PageRequest::from_request(request)? {
        PageRequest::Number(number) => number,
        PageRequest::Last => {
            let (total, _) = fetch(1, 0)?;
            total.div_ceil(page_size).max(1)
        }
    };
    let offset = (number - 1).saturating_mul(page_size);
    let (total, items) = fetch(page_size, offset)?;
    if items.is_empty() && number > 1 {
        return Err(invalid_page());
    }
    let last = total.div_ceil(page_size).max(1);
    let next = (number < last).then(|| page_url(request, Some(number + 1)));
    let previous = (number > 1).then(|| page_url(request, (number > 2).then_some(number - 1)));
    Ok(json!({
        "count": total,
        "next": next,
        "previous": previous,
        "results": items.iter().map(render).collect::<Vec<_>>(),
    }))
}

/// The empty page of list endpoints that show nothing to this caller.
pub fn empty_page() -> Value {
    json!({"count": 0, "next": null, "previous": null, "results": []})
}

/// The request's absolute URL with `page` replaced (or removed for page 1).
fn page_url(request: &ApiRequest, page: Option<u64>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(request.query.as_bytes()) {
        if key != "page" {
            query.append_pair(&key, &value);
        }
    }
    if let Some(page) = page {
        query.append_pair("page", &page.to_string());
    }
    let query = query.finish();
    let origin = request_origin(request).unwrap_or_default();
    if query.is_empty() {
        format!("{origin}{}", request.path)
    } else {
        format!("{origin}{}?{query}", request.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn request(query: &str) -> ApiRequest {
        ApiRequest::new(Method::GET, &format!("/api/v1.0/rooms/{query}"))
            .with_header("host", "testserver")
    }

    fn numbers(total: u64) -> impl Fn(u64, u64) -> Result<(u64, Vec<u64>), ApiError> {
        move |limit, offset| Ok((total, (offset..total.min(offset + limit)).collect()))
    }

    #[test]
    fn links_are_absolute_and_page_one_has_no_parameter() {
        let page = paginate(&request("?page=2&q=x"), 20, numbers(45), |n| json!(n)).unwrap();
        assert_eq!(page["count"], 45);
        assert_eq!(page["next"], "http://testserver/api/v1.0/rooms/?q=x&page=3");
        assert_eq!(page["previous"], "http://testserver/api/v1.0/rooms/?q=x");
        assert_eq!(page["results"][0], 20);
        let last = paginate(&request("?page=last"), 20, numbers(45), |n| json!(n)).unwrap();
        assert_eq!(last["results"], json!([40, 41, 42, 43, 44]));
        assert_eq!(last["next"], Value::Null);
        assert_eq!(last["previous"], "http://testserver/api/v1.0/rooms/?page=2");
    }

    #[test]
    fn out_of_range_or_invalid_pages_are_404() {
        for query in ["?page=4", "?page=0", "?page=x", "?page=-1"] {
            let error = paginate(&request(query), 20, numbers(45), |n| json!(n)).unwrap_err();
            assert_eq!(error.body(), json!({"detail": "Invalid page."}), "{query}");
        }
        let empty = paginate(&request(""), 20, numbers(0), |n| json!(n)).unwrap();
        assert_eq!(empty, empty_page());
    }
}
