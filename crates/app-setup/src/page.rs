//! The setup pages: plain HTML, no outside script or style, so they work offline and behind
//! any proxy. Every value written into a page is escaped.

/// `text` safe inside HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5}fieldset{margin:1rem 0}label{display:block;margin:.25rem 0}\
button{font-size:1rem;padding:.5rem 1rem}code{background:#f3f3f3;padding:0 .2rem}";

/// A whole page: `title` (escaped) and `body` (HTML the caller escaped).
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><meta name=\"referrer\" content=\"no-referrer\">\
<title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    )
}

/// The page that asks for the setup token.
pub fn ask_token(token_command: &str) -> String {
    document(
        "Set up runway",
        &format!(
            "<p>Give the setup token. Only the deployer can read it:</p>\
<pre><code>{}</code></pre>\
<form method=\"get\" action=\"{}\"><label>Setup token \
<input type=\"password\" name=\"token\" autocomplete=\"off\" required></label>\
<button type=\"submit\">Continue</button></form>",
            escape(token_command),
            crate::SETUP_PATH
        ),
    )
}

/// The choice: whose App, on which GitHub, for which runners. `ticket` stands for the token.
pub fn choose(ticket: &str, app_name: &str, webhook_url: &str) -> String {
    document(
        "Create runway's GitHub App",
        &format!(
            r#"<p>runway makes a private GitHub App that sends <code>workflow_job</code> events to
<code>{webhook}</code> and may only read Actions jobs and register self-hosted runners. GitHub
asks you to confirm it; then you install it on the repositories runway serves.</p>
<form method="post" action="{start}">
<input type="hidden" name="ticket" value="{ticket}">
<label>App name <input name="name" value="{name}" maxlength="34" required></label>
<fieldset><legend>Owner</legend>
<label><input type="radio" name="owner" value="organization" checked> An organisation:
<input name="organization" placeholder="octo-org"></label>
<label><input type="radio" name="owner" value="user"> My personal account</label>
</fieldset>
<fieldset><legend>Runners are registered</legend>
<label><input type="radio" name="scope" value="repository" checked> per repository
(permissions: Actions read, Administration write)</label>
<label><input type="radio" name="scope" value="organization"> per organisation
(permissions: Actions read, Self-hosted runners write)</label>
</fieldset>
<fieldset><legend>GitHub</legend>
<label><input type="radio" name="site" value="default" checked> {default_site}</label>
<label><input type="radio" name="site" value="server"> GitHub Enterprise Server at
<input name="server_url" placeholder="https://github.example.com"></label>
</fieldset>
<button type="submit" id="create-app">Create the GitHub App</button>
</form>"#,
            webhook = escape(webhook_url),
            start = crate::START_PATH,
            ticket = escape(ticket),
            name = escape(app_name),
            default_site = "GitHub",
        ),
    )
}

/// The page that posts the manifest to GitHub by itself (a button when scripts are off).
pub fn post_manifest(action: &str, manifest: &str) -> String {
    document(
        "Creating the GitHub App",
        &format!(
            r#"<form id="manifest-form" method="post" action="{action}">
<input type="hidden" name="manifest" value="{manifest}">
<p>Sending you to GitHub to confirm the App…</p>
<button type="submit" id="continue">Continue to GitHub</button></form>
<script>document.getElementById("manifest-form").submit();</script>"#,
            action = escape(action),
            manifest = escape(manifest),
        ),
    )
}

/// The end: the App exists, its credentials are stored; install it.
pub fn done(slug: &str, install_url: &str, webhook_url: &str) -> String {
    document(
        "runway is set up",
        &format!(
            r#"<p>The GitHub App <strong id="app-slug">{slug}</strong> is created and its
credentials are stored; runway uses them from now on. Its webhook goes to
<code>{webhook}</code>.</p>
<p><a id="install-app" href="{install}">Install the App</a> on the organisations or
repositories whose jobs runway should run, then queue a job with
<code>runs-on: [self-hosted, ...]</code>.</p>
<p>This page is closed now: the setup token is spent.</p>"#,
            slug = escape(slug),
            install = escape(install_url),
            webhook = escape(webhook_url),
        ),
    )
}

/// A refusal or failure, with what to do.
pub fn problem(title: &str, advice: &str) -> String {
    document(title, &format!("<p>{}</p>", escape(advice)))
}
