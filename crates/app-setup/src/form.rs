//! `application/x-www-form-urlencoded` text (query strings and posted forms), read and
//! written as browsers do: `+` is a space, `%XX` a byte, pairs split by `&`.

/// The pairs of `text`, decoded. A malformed escape is kept as typed; bytes that are not
/// UTF-8 become U+FFFD.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// The first value of `name` in `text`, decoded.
pub fn value(text: &str, name: &str) -> Option<String> {
    parse(text)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    (byte as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// `text` escaped for a query or form value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_browsers_send() {
        assert_eq!(
            parse("code=abc123&state=n.s%3Ax&empty=&flag"),
            vec![
                ("code".into(), "abc123".into()),
                ("state".into(), "n.s:x".into()),
                ("empty".into(), String::new()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(value("a=1+2&b=%7B%7D", "b").as_deref(), Some("{}"));
        assert_eq!(value("a=1+2", "a").as_deref(), Some("1 2"));
        assert_eq!(value("a=%zz%4", "a").as_deref(), Some("%zz%4"));
        assert_eq!(value("a=1", "b"), None);
    }

    proptest! {
        #[test]
        fn what_is_encoded_decodes_back(name in "[a-z_]{1,10}", value_text in any::<String>()) {
            let text = format!("{}={}&other=1", encode(&name), encode(&value_text));
            prop_assert_eq!(value(&text, &name), Some(value_text));
        }

        #[test]
        fn any_text_parses_without_panicking(text in any::<String>()) {
            let _ = parse(&text);
        }
    }
}
