//! What the browser may keep, through the proxy: the page always shows what is on disk.
//!
//! - A page with the reload script depends on hotrun's state (the script carries the
//!   id of the app that served it), so it is never stored: its validators are dropped
//!   and it is sent `no-store`; document requests reach the app unconditionally.
//! - Everything else must be asked for again after any change hotrun saw, even within
//!   the second a `Last-Modified` date cannot tell apart. Answers are sent
//!   `no-cache` (always revalidated, never fresh by heuristics), and their validator is
//!   stamped with hotrun's *change epoch* when the request went to the app: the
//!   `ETag` the app sent becomes `"hr-RUN-EPOCH.ORIGINAL"`, and an answer with only a
//!   `Last-Modified` gets a weak `W/"hr-RUN-EPOCH."`. A revalidation that names the
//!   current epoch goes on to the app with the original validators (an unchanged file
//!   is still a cheap `304`); one from an older epoch, another run, or without a stamp
//!   is sent unconditionally, so the app answers with the file as it is now.
//!
//! Pure header rewriting: no I/O, no clock.

use hyper::header::{
    HeaderMap, HeaderValue, CACHE_CONTROL, ETAG, EXPIRES, IF_MATCH, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED,
};

/// When a request went to the app: this hotrun's run and its change epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    pub run: u64,
    pub epoch: u64,
}

/// Requests that must reach the app unconditionally (documents): drop what would let
/// it answer `304`.
pub fn strip_conditionals(headers: &mut HeaderMap) {
    headers.remove(IF_NONE_MATCH);
    headers.remove(IF_MODIFIED_SINCE);
}

/// A document carrying the reload script: never stored, never revalidated.
pub fn never_store(headers: &mut HeaderMap) {
    headers.remove(ETAG);
    headers.remove(LAST_MODIFIED);
    headers.remove(EXPIRES);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `If-Match` and `If-Range` (optimistic locking, resumed downloads) name the app's own
/// tags again, whatever their epoch: they ask whether the resource is still that
/// version, which the app alone can say. A tag of hotrun's own (made from a date)
/// names nothing the app knows and is dropped.
pub fn unstamp_preconditions(headers: &mut HeaderMap) {
    for name in [IF_MATCH, IF_RANGE] {
        let Some(value) = headers.get(&name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        let tags = split_tags(value);
        if !tags.iter().any(|t| parse_stamp(t).is_some()) {
            continue;
        }
        let originals: Vec<String> = tags
            .iter()
            .filter_map(|t| match parse_stamp(t) {
                Some((_, original)) => original,
                None => Some(t.clone()),
            })
            .collect();
        match HeaderValue::from_str(&originals.join(", ")) {
            Ok(value) if !originals.is_empty() => {
                headers.insert(&name, value);
            }
            _ => {
                headers.remove(&name);
            }
        }
    }
}

/// A revalidation on its way to the app: with the app's own validators when the
/// browser's copy is from the current epoch, unconditional otherwise.
pub fn revalidate(headers: &mut HeaderMap, now: Epoch) {
    let tags: Vec<String> = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_tags)
        .collect();
    let current = !tags.is_empty()
        && tags
            .iter()
            .all(|t| parse_stamp(t).is_some_and(|(at, _)| at == now));
    if !current {
        strip_conditionals(headers);
        return;
    }
    let originals: Vec<String> = tags
        .iter()
        .filter_map(|t| parse_stamp(t).and_then(|(_, original)| original))
        .collect();
    headers.remove(IF_NONE_MATCH);
    if let Ok(value) = HeaderValue::from_str(&originals.join(", ")) {
        if !originals.is_empty() {
            headers.insert(IF_NONE_MATCH, value);
        }
    }
}

/// An answer on its way to the browser (not a page with the script): revalidated at
/// every use, its validator stamped with the epoch its request was sent in.
pub fn stamp(headers: &mut HeaderMap, at: Epoch) {
    let no_store = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("no-store"));
    if no_store {
        return;
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.remove(EXPIRES);
    let original = headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let tag = match original.as_deref().and_then(split_tag) {
        Some((weak, opaque)) => format!(
            "{}\"hr-{}-{}.{opaque}\"",
            if weak { "W/" } else { "" },
            at.run,
            at.epoch
        ),
        // Only a date to go by: a weak tag of hotrun's, so the next request says which
        // epoch its copy is from.
        None if headers.contains_key(LAST_MODIFIED) => {
            format!("W/\"hr-{}-{}.\"", at.run, at.epoch)
        }
        None => {
            headers.remove(ETAG);
            return;
        }
    };
    match HeaderValue::from_str(&tag) {
        Ok(value) => {
            headers.insert(ETAG, value);
        }
        Err(_) => {
            headers.remove(ETAG);
        }
    }
}

/// `W/"a", "b"` → `["W/\"a\"", "\"b\""]`; `*` stays `*`.
fn split_tags(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let weak = rest.starts_with("W/");
        let body = if weak { &rest[2..] } else { rest };
        if let Some(inner) = body.strip_prefix('"') {
            let Some(end) = inner.find('"') else {
                out.push(rest.to_string());
                break;
            };
            let len = (if weak { 2 } else { 0 }) + 1 + end + 1;
            out.push(rest[..len].to_string());
            rest = rest[len..]
                .trim_start()
                .trim_start_matches(',')
                .trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            out.push(rest[..end].trim().to_string());
            rest = rest[end..].trim_start_matches(',').trim_start();
        }
    }
    out
}

/// `W/"abc"` → (true, "abc").
fn split_tag(tag: &str) -> Option<(bool, &str)> {
    let tag = tag.trim();
    let (weak, body) = match tag.strip_prefix("W/") {
        Some(body) => (true, body),
        None => (false, tag),
    };
    let opaque = body.strip_prefix('"')?.strip_suffix('"')?;
    (!opaque.contains('"')).then_some((weak, opaque))
}

/// A tag hotrun stamped: the epoch, and the app's own tag if there was one.
fn parse_stamp(tag: &str) -> Option<(Epoch, Option<String>)> {
    let (weak, opaque) = split_tag(tag)?;
    let rest = opaque.strip_prefix("hr-")?;
    let (run, rest) = rest.split_once('-')?;
    let (epoch, original) = rest.split_once('.')?;
    let at = Epoch {
        run: run.parse().ok()?,
        epoch: epoch.parse().ok()?,
    };
    let original =
        (!original.is_empty()).then(|| format!("{}\"{original}\"", if weak { "W/" } else { "" }));
    Some((at, original))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Epoch = Epoch { run: 17, epoch: 4 };

    fn headers(pairs: &[(&hyper::header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn get<'a>(h: &'a HeaderMap, name: &hyper::header::HeaderName) -> Option<&'a str> {
        h.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn answers_are_revalidated_and_stamped() {
        let mut h = headers(&[
            (&ETAG, "\"abc\""),
            (&CACHE_CONTROL, "max-age=3600"),
            (&EXPIRES, "Thu, 01 Dec 2099 16:00:00 GMT"),
        ]);
        stamp(&mut h, AT);
        assert_eq!(get(&h, &ETAG), Some("\"hr-17-4.abc\""));
        assert_eq!(get(&h, &CACHE_CONTROL), Some("no-cache"));
        assert_eq!(get(&h, &EXPIRES), None);

        let mut h = headers(&[(&ETAG, "W/\"x-1\"")]);
        stamp(&mut h, AT);
        assert_eq!(get(&h, &ETAG), Some("W/\"hr-17-4.x-1\""));

        // Last-Modified only (Python's http.server, tower-http's ServeDir).
        let mut h = headers(&[(&LAST_MODIFIED, "Wed, 02 Dec 2026 07:00:00 GMT")]);
        stamp(&mut h, AT);
        assert_eq!(get(&h, &ETAG), Some("W/\"hr-17-4.\""));
        assert!(h.contains_key(LAST_MODIFIED));

        // No validator: revalidated all the same, nothing to stamp.
        let mut h = HeaderMap::new();
        stamp(&mut h, AT);
        assert_eq!(get(&h, &CACHE_CONTROL), Some("no-cache"));
        assert_eq!(get(&h, &ETAG), None);

        // The app said no-store: it stays so.
        let mut h = headers(&[(&CACHE_CONTROL, "no-store"), (&ETAG, "\"a\"")]);
        stamp(&mut h, AT);
        assert_eq!(get(&h, &CACHE_CONTROL), Some("no-store"));
        assert_eq!(get(&h, &ETAG), Some("\"a\""));
    }

    #[test]
    fn a_copy_from_the_current_epoch_may_get_a_304() {
        let mut h = headers(&[
            (&IF_NONE_MATCH, "\"hr-17-4.abc\""),
            (&IF_MODIFIED_SINCE, "Wed, 02 Dec 2026 07:00:00 GMT"),
        ]);
        revalidate(&mut h, AT);
        assert_eq!(get(&h, &IF_NONE_MATCH), Some("\"abc\""));
        assert!(h.contains_key(IF_MODIFIED_SINCE));

        // hotrun's own weak tag: the date alone goes on.
        let mut h = headers(&[
            (&IF_NONE_MATCH, "W/\"hr-17-4.\""),
            (&IF_MODIFIED_SINCE, "Wed, 02 Dec 2026 07:00:00 GMT"),
        ]);
        revalidate(&mut h, AT);
        assert_eq!(get(&h, &IF_NONE_MATCH), None);
        assert!(h.contains_key(IF_MODIFIED_SINCE));

        let mut h = headers(&[(&IF_NONE_MATCH, "W/\"hr-17-4.a\", \"hr-17-4.b\"")]);
        revalidate(&mut h, AT);
        assert_eq!(get(&h, &IF_NONE_MATCH), Some("W/\"a\", \"b\""));
    }

    #[test]
    fn an_older_copy_is_fetched_anew() {
        for stale in [
            "\"hr-17-3.abc\"", // an earlier epoch
            "\"hr-16-4.abc\"", // another run of hotrun
            "\"abc\"",         // not stamped: when it was taken is unknown
            "*",               //
            "\"hr-17-4.a\", \"hr-17-2.b\"",
            "\"hr-x-4.a\"",
        ] {
            let mut h = headers(&[
                (&IF_NONE_MATCH, stale),
                (&IF_MODIFIED_SINCE, "Wed, 02 Dec 2026 07:00:00 GMT"),
            ]);
            revalidate(&mut h, AT);
            assert!(
                !h.contains_key(IF_NONE_MATCH) && !h.contains_key(IF_MODIFIED_SINCE),
                "{stale}"
            );
        }
        // A date alone cannot tell two saves within one second apart.
        let mut h = headers(&[(&IF_MODIFIED_SINCE, "Wed, 02 Dec 2026 07:00:00 GMT")]);
        revalidate(&mut h, AT);
        assert!(!h.contains_key(IF_MODIFIED_SINCE));
    }

    #[test]
    fn preconditions_name_the_apps_own_tags() {
        let mut h = headers(&[
            (&IF_MATCH, "\"hr-17-2.v5\", \"other\""),
            (&IF_RANGE, "\"hr-16-9.v5\""),
        ]);
        unstamp_preconditions(&mut h);
        assert_eq!(get(&h, &IF_MATCH), Some("\"v5\", \"other\""));
        assert_eq!(get(&h, &IF_RANGE), Some("\"v5\""));
        // Dates and tags hotrun did not make pass as they are.
        let mut h = headers(&[
            (&IF_MATCH, "*"),
            (&IF_RANGE, "Wed, 02 Dec 2026 07:00:00 GMT"),
        ]);
        unstamp_preconditions(&mut h);
        assert_eq!(get(&h, &IF_MATCH), Some("*"));
        assert_eq!(get(&h, &IF_RANGE), Some("Wed, 02 Dec 2026 07:00:00 GMT"));
        // hotrun's own date tag names nothing the app knows.
        let mut h = headers(&[(&IF_RANGE, "W/\"hr-17-4.\"")]);
        unstamp_preconditions(&mut h);
        assert_eq!(get(&h, &IF_RANGE), None);
    }

    #[test]
    fn pages_with_the_script_are_never_stored() {
        let mut h = headers(&[
            (&ETAG, "\"abc\""),
            (&LAST_MODIFIED, "Wed, 02 Dec 2026 07:00:00 GMT"),
            (&CACHE_CONTROL, "public, max-age=600"),
        ]);
        never_store(&mut h);
        assert_eq!(get(&h, &ETAG), None);
        assert_eq!(get(&h, &LAST_MODIFIED), None);
        assert_eq!(get(&h, &CACHE_CONTROL), Some("no-store"));
    }

    #[test]
    fn tag_lists_split_like_browsers_send_them() {
        assert_eq!(
            split_tags("W/\"a,b\", \"c\" ,*"),
            vec!["W/\"a,b\"", "\"c\"", "*"]
        );
        assert_eq!(split_tags(""), Vec::<String>::new());
    }
}
