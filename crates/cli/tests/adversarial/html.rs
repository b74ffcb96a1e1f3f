//! A small HTML tokenizer for judging pages the way a browser reads them: tags, their
//! attributes (entity-decoded), text and raw-text elements, after the HTML standard's
//! tokenization rules closely enough to see any markup a payload managed to inject. It
//! knows nothing of Tessera's templates; `markup_problems` holds the page to what they use.

/// One start tag with its decoded attributes, and its content when it is a raw-text or
/// RCDATA element (`script`, `style`, `textarea`, `title`).
#[derive(Debug)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) content: Option<String>,
}

impl Element {
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed page: every start tag in order, and every text node (decoded).
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub(crate) elements: Vec<Element>,
    pub(crate) texts: Vec<String>,
    /// A tag the input ended inside of (a payload that swallowed the rest of the page).
    pub(crate) unterminated: bool,
}

impl Document {
    pub(crate) fn parse(html: &str) -> Document {
        let mut document = Document::default();
        let mut rest = html;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("<!--") {
                rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            } else if rest.starts_with("<!") || rest.starts_with("<?") {
                rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
            } else if rest.starts_with("</") && starts_with_letter(&rest[2..]) {
                rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
            } else if rest.starts_with('<') && starts_with_letter(&rest[1..]) {
                rest = document.start_tag(&rest[1..]);
            } else {
                // Text up to the next '<' that could open markup.
                let first = first_len(rest);
                let end = rest[first..]
                    .find('<')
                    .map_or(rest.len(), |position| position + first);
                document.texts.push(decode(&rest[..end]));
                rest = &rest[end..];
            }
        }
        document
    }

    /// Parses a start tag after its '<'; returns the input after the tag (and after the
    /// content of a raw-text element).
    fn start_tag<'a>(&mut self, input: &'a str) -> &'a str {
        let name_end = input
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .unwrap_or(input.len());
        let name = input[..name_end].to_ascii_lowercase();
        let mut rest = &input[name_end..];
        let mut attributes = Vec::new();
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
            if rest.is_empty() {
                self.unterminated = true;
                return rest;
            }
            if let Some(after) = rest.strip_prefix('>') {
                rest = after;
                break;
            }
            // An attribute name may begin with '='; then it runs to a delimiter.
            let first = first_len(rest);
            let name_end = rest[first..]
                .find(|c: char| c.is_ascii_whitespace() || matches!(c, '/' | '>' | '='))
                .map_or(rest.len(), |position| position + first);
            let attribute = rest[..name_end].to_ascii_lowercase();
            rest = rest[name_end..].trim_start_matches(|c: char| c.is_ascii_whitespace());
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix('=') {
                rest = after.trim_start_matches(|c: char| c.is_ascii_whitespace());
                let (raw, after) = match rest.chars().next() {
                    Some(quote @ ('"' | '\'')) => match rest[1..].find(quote) {
                        Some(end) => (&rest[1..end + 1], &rest[end + 2..]),
                        None => {
                            self.unterminated = true;
                            (&rest[1..], "")
                        }
                    },
                    _ => {
                        let end = rest
                            .find(|c: char| c.is_ascii_whitespace() || c == '>')
                            .unwrap_or(rest.len());
                        (&rest[..end], &rest[end..])
                    }
                };
                value = decode(raw);
                rest = after;
            }
            attributes.push((attribute, value));
        }
        let content = match name.as_str() {
            "script" | "style" | "textarea" | "title" => {
                let close = format!("</{name}");
                let end = find_ascii_case_insensitive(rest, &close).unwrap_or(rest.len());
                let raw = &rest[..end];
                let text = if matches!(name.as_str(), "textarea" | "title") {
                    decode(raw)
                } else {
                    raw.to_string()
                };
                rest = &rest[end..];
                rest = rest.find('>').map_or("", |close| &rest[close + 1..]);
                Some(text)
            }
            _ => None,
        };
        self.elements.push(Element {
            name,
            attributes,
            content,
        });
        rest
    }

    /// The elements named `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements.iter().filter(move |e| e.name == name)
    }

    /// The `input` named `name`, if exactly one.
    pub(crate) fn input(&self, name: &str) -> Option<&Element> {
        let mut inputs = self
            .all("input")
            .filter(|e| e.attribute("name") == Some(name));
        let first = inputs.next()?;
        inputs.next().is_none().then_some(first)
    }

    /// Whether `value` is on the page as data: inside a text node, an attribute value or
    /// an RCDATA element's text, once decoded.
    pub(crate) fn shows(&self, value: &str) -> bool {
        self.texts.iter().any(|t| t.contains(value))
            || self.elements.iter().any(|e| {
                e.attributes.iter().any(|(_, v)| v.contains(value))
                    || e.content.as_deref().is_some_and(|c| c.contains(value))
            })
    }
}

/// The length in bytes of the first character of a non-empty text.
fn first_len(text: &str) -> usize {
    text.chars().next().map_or(0, char::len_utf8)
}

fn starts_with_letter(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Decodes character references: the named ones a template engine writes and numeric ones.
pub(crate) fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What Tessera's templates use; anything else on a page was injected.
const TEMPLATE_ELEMENTS: &[&str] = &[
    "html", "head", "meta", "title", "link", "body", "main", "h1", "p", "strong", "form", "input",
    "label", "button", "a", "ul", "li", "span", "code", "div", "noscript", "script",
];
/// The only scripts a page may load, each from its own file.
const SCRIPTS: &[&str] = &["/static/form_post.js", "/static/web_message.js"];
/// Attributes whose value a browser follows as a URL.
const URL_ATTRIBUTES: &[&str] = &["href", "src", "action", "formaction", "srcdoc", "data"];

/// Every sign of injected markup in `document`: elements the templates do not use, event
/// handler or style attributes, an attribute twice in one tag, scripts other than the
/// static files (or with inline content), URL attributes with an active scheme, a meta
/// refresh, forms leading off the server other than to `form_target`, a tag left open.
pub(crate) fn markup_problems(document: &Document, form_target: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    if document.unterminated {
        problems.push("a tag runs to the end of the page".to_string());
    }
    for element in &document.elements {
        let name = &element.name;
        if !TEMPLATE_ELEMENTS.contains(&name.as_str()) {
            problems.push(format!("element <{name}>"));
        }
        for (index, (attribute, value)) in element.attributes.iter().enumerate() {
            if attribute.starts_with("on") || attribute == "style" {
                problems.push(format!("attribute {attribute} on <{name}>"));
            }
            if element.attributes[..index]
                .iter()
                .any(|(earlier, _)| earlier == attribute)
            {
                problems.push(format!("attribute {attribute} twice on <{name}>"));
            }
            if URL_ATTRIBUTES.contains(&attribute.as_str()) && active_scheme(value) {
                problems.push(format!("{attribute}={value:?} on <{name}>"));
            }
        }
        match name.as_str() {
            "script" => {
                let src = element.attribute("src").unwrap_or("");
                if !SCRIPTS.contains(&src)
                    || element
                        .content
                        .as_deref()
                        .is_some_and(|c| !c.trim().is_empty())
                {
                    problems.push(format!("script src={src:?} {:?}", element.content));
                }
            }
            "meta" if element.attribute("http-equiv").is_some() => {
                problems.push(format!("meta http-equiv {:?}", element.attributes));
            }
            "form" => {
                let action = element.attribute("action").unwrap_or("");
                let on_server = action.starts_with('/') && !action.starts_with("//");
                if !on_server && Some(action) != form_target {
                    problems.push(format!("form action {action:?}"));
                }
            }
            _ => {}
        }
    }
    problems
}

/// `javascript:`, `vbscript:` or `data:`, as a browser reads the scheme (ASCII
/// whitespace and control characters dropped, any case).
fn active_scheme(url: &str) -> bool {
    let scheme: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "vbscript:", "data:"]
        .iter()
        .any(|active| scheme.starts_with(active))
}

#[test]
fn the_tokenizer_sees_what_a_browser_would() {
    let page = Document::parse(
        "<p title='a&#39;b'>x &lt;y&gt;</p><input value=\"\"><img src=x onerror=alert(1)>\
         <!-- <script>no</script> --><script>alert(2)</script><textarea>&lt;b&gt;</textarea>",
    );
    let problems = markup_problems(&page, None);
    assert!(page.shows("x <y>"));
    assert!(page.shows("a'b"));
    assert!(page.shows("<b>"));
    assert!(
        problems.iter().any(|p| p == "element <img>"),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("onerror")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("alert(2)")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p == "element <textarea>"),
        "{problems:?}"
    );
    assert_eq!(page.all("script").count(), 1, "comments hide their markup");
    let broken =
        Document::parse("<input value=\"x\" name=\"a\" value=\"y\"><a href=' java\tscript:x'>");
    let problems = markup_problems(&broken, None);
    assert!(problems.iter().any(|p| p.contains("twice")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("href")), "{problems:?}");
    assert!(Document::parse("<input value=\"unterminated>").unterminated);
}
