//! The console's script, style and page shell, embedded in the binary: the console works
//! offline and fetches nothing but its own JSON.

pub(super) const SCRIPT: &str = include_str!("assets/console.js");
pub(super) const STYLE: &str = include_str!("assets/console.css");

const NAV: [(&str, &str, &str); 3] = [
    ("/", "executions", "Executions"),
    ("/pools", "pools", "Pools"),
    ("/metrics", "metrics", "Metrics"),
];

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page: the header and navigation, and an empty `<main>` the script fills in for `page`.
pub(super) fn page(title: &str, page: &str, execution: Option<&str>) -> String {
    let nav: String = NAV
        .iter()
        .map(|(href, id, label)| {
            let current = if *id == page || (page == "execution" && *id == "executions") {
                " class=\"current\""
            } else {
                ""
            };
            format!("<a href=\"{href}\"{current}>{label}</a>")
        })
        .collect();
    let execution = execution
        .map(|name| format!(" data-execution=\"{}\"", escape(name)))
        .unwrap_or_default();
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · runway local</title>\n\
         <link rel=\"icon\" href=\"data:,\">\n\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\n</head>\n<body>\n\
         <header><a class=\"brand\" href=\"/\">runway local</a><nav>{nav}</nav>\
         <span id=\"live\">connecting…</span></header>\n\
         <main id=\"app\" data-page=\"{page}\"{execution}><h1>{title}</h1></main>\n\
         <script src=\"/console/assets/console.js\"></script>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_escapes_what_it_is_given_and_loads_only_its_own_assets() {
        let html = page("<b>", "execution", Some("a\"b"));
        assert!(html.contains("<title>&lt;b&gt; · runway local</title>"));
        assert!(html.contains("data-execution=\"a&quot;b\""));
        let elsewhere: Vec<&str> = html
            .split(['"', '\''])
            .filter(|s| s.contains("//"))
            .collect();
        assert!(elsewhere.is_empty(), "the page refers to {elsewhere:?}");
        // The SVG namespace is a name, not an address.
        let script = SCRIPT.replace("http://www.w3.org/2000/svg", "");
        assert!(!script.contains("http://") && !script.contains("https://"));
        assert!(!STYLE.contains("url("));
    }
}
