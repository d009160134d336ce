//! `maxResults` + `nextToken` paging, as the Step Functions list operations do it.
//!
//! A token is opaque to the caller. It carries the offset of the next page and the listing it
//! belongs to, so a token from another listing is refused with `InvalidToken` instead of
//! silently paging through the wrong list.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::protocol::ApiError;

/// Page size when `maxResults` is absent or 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest `maxResults` AWS accepts.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// The page size a request asked for, checked as AWS checks it.
pub fn page_size(max_results: Option<i64>) -> Result<usize, ApiError> {
    match max_results {
        None | Some(0) => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if n < 0 => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 0"
        ))),
        Some(n) if n > MAX_PAGE_SIZE => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {MAX_PAGE_SIZE}"
        ))),
        Some(n) => Ok(n as usize),
    }
}

/// A token for the page starting at `offset` of the listing named `scope`.
pub fn encode_token(scope: &str, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{offset}:{scope}"))
}

/// The offset a token points at, provided it belongs to the listing named `scope`.
pub fn decode_token(token: &str, scope: &str) -> Result<usize, ApiError> {
    let invalid = || ApiError::invalid_token(format!("Invalid Token: '{token}'"));
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (offset, token_scope) = text.split_once(':').ok_or_else(invalid)?;
    if token_scope != scope {
        return Err(invalid());
    }
    offset.parse().map_err(|_| invalid())
}

/// One page of `items` and the token for the next page, if there is one.
pub fn page<T>(
    items: Vec<T>,
    scope: &str,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = page_size(max_results)?;
    let start = match next_token {
        Some(token) => decode_token(token, scope)?,
        None => 0,
    };
    if start > items.len() {
        return Err(ApiError::invalid_token(format!(
            "Invalid Token: '{}'",
            next_token.unwrap_or_default()
        )));
    }
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| encode_token(scope, end));
    let page = items.into_iter().skip(start).take(end - start).collect();
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_or_absent_max_results_means_the_default() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(0)).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(7)).unwrap(), 7);
        assert_eq!(page_size(Some(1000)).unwrap(), 1000);
    }

    #[test]
    fn out_of_range_max_results_is_a_validation_error() {
        for n in [-1, 1001, i64::MAX] {
            let error = page_size(Some(n)).unwrap_err();
            assert_eq!(error.code, "ValidationException");
            assert!(error.message.contains("maxResults"));
        }
    }

    #[test]
    fn a_token_from_another_listing_is_refused() {
        let token = encode_token("arn:a", 10);
        assert_eq!(decode_token(&token, "arn:a").unwrap(), 10);
        assert_eq!(
            decode_token(&token, "arn:b").unwrap_err().code,
            "InvalidToken"
        );
        assert_eq!(
            decode_token("!!!", "arn:a").unwrap_err().code,
            "InvalidToken"
        );
        assert_eq!(decode_token("", "arn:a").unwrap_err().code, "InvalidToken");
    }

    #[test]
    fn a_token_past_the_end_is_refused() {
        let token = encode_token("s", 50);
        let error = page(vec![1, 2, 3], "s", None, Some(&token)).unwrap_err();
        assert_eq!(error.code, "InvalidToken");
    }

    proptest! {
        #[test]
        fn paging_visits_every_item_once_in_order(len in 0usize..300, size in 1i64..40, scope in "[a-z:/0-9-]{0,30}") {
            let items: Vec<usize> = (0..len).collect();
            let mut seen = Vec::new();
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                let (chunk, next) = page(items.clone(), &scope, Some(size), token.as_deref()).unwrap();
                prop_assert!(chunk.len() <= size as usize);
                seen.extend(chunk);
                pages += 1;
                prop_assert!(pages <= len + 1);
                match next {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
            prop_assert_eq!(seen, items);
        }

        #[test]
        fn arbitrary_tokens_never_panic(token in ".{0,60}", scope in "[a-z]{0,8}") {
            let _ = decode_token(&token, &scope);
            let _ = page(vec![1, 2, 3], &scope, None, Some(&token));
        }
    }
}
