//! A flat reader for WeCom's callback XML: one root element whose children hold text.
//!
//! Both the envelope and the decrypted events have that shape. Each child's text is the
//! concatenation of its text, CDATA sections and entity references; nested elements inside a
//! child are skipped (their text is not part of the child's value).

use quick_xml::Reader;
use quick_xml::escape::unescape;
use quick_xml::events::Event;

use super::error::CallbackError;

/// The direct children of the root element, in document order, as (name, text).
pub(crate) fn root_children(xml: &str) -> Result<Vec<(String, String)>, CallbackError> {
    let mut reader = Reader::from_str(xml);
    let mut children: Vec<(String, String)> = Vec::new();
    // 0: outside the root, 1: inside the root, 2: inside a child, 3+: deeper.
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let event = reader.read_event().map_err(|e| malformed(&e))?;
        match event {
            Event::Start(start) => {
                if depth == 0 {
                    if seen_root {
                        return Err(CallbackError::MalformedXml("more than one root".into()));
                    }
                    seen_root = true;
                } else if depth == 1 {
                    children.push((name_of(start.local_name().as_ref())?, String::new()));
                }
                depth += 1;
            }
            Event::Empty(start) => {
                if depth == 0 {
                    if seen_root {
                        return Err(CallbackError::MalformedXml("more than one root".into()));
                    }
                    seen_root = true;
                } else if depth == 1 {
                    children.push((name_of(start.local_name().as_ref())?, String::new()));
                }
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start.
                depth = depth.saturating_sub(1);
            }
            Event::Text(text) => {
                let text = text.xml10_content().map_err(|e| malformed(&e))?;
                push_text(depth, &mut children, &text)?;
            }
            Event::CData(cdata) => {
                let text = cdata.xml10_content().map_err(|e| malformed(&e))?;
                push_text(depth, &mut children, &text)?;
            }
            Event::GeneralRef(reference) => {
                let name = reference.decode().map_err(|e| malformed(&e))?;
                let escaped = format!("&{name};");
                let resolved = unescape(&escaped).map_err(|e| malformed(&e))?;
                push_text(depth, &mut children, &resolved)?;
            }
            Event::Eof => {
                if !seen_root {
                    return Err(CallbackError::MalformedXml("no root element".into()));
                }
                if depth != 0 {
                    return Err(CallbackError::MalformedXml("unclosed element".into()));
                }
                return Ok(children);
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

/// The text of the first child named `name`.
pub(crate) fn field<'a>(children: &'a [(String, String)], name: &str) -> Option<&'a str> {
    children
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Writes `<name><![CDATA[value]]></name>`, splitting any `]]>` in `value` across sections.
pub(crate) fn push_cdata_element(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push_str("><![CDATA[");
    out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]></");
    out.push_str(name);
    out.push('>');
}

fn push_text(
    depth: usize,
    children: &mut [(String, String)],
    text: &str,
) -> Result<(), CallbackError> {
    match depth {
        2 => {
            if let Some((_, value)) = children.last_mut() {
                value.push_str(text);
            }
            Ok(())
        }
        0 | 1 if !text.trim().is_empty() => Err(CallbackError::MalformedXml(
            "text outside the fields".into(),
        )),
        _ => Ok(()),
    }
}

fn name_of(raw: &[u8]) -> Result<String, CallbackError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| CallbackError::MalformedXml("element name is not UTF-8".into()))
}

fn malformed(e: &dyn std::fmt::Display) -> CallbackError {
    let mut why = e.to_string();
    if why.len() > 120 {
        let mut cut = 120;
        while !why.is_char_boundary(cut) {
            cut -= 1;
        }
        why.truncate(cut);
    }
    CallbackError::MalformedXml(why)
}

#[cfg(test)]
mod malformed_tests {
    use super::*;

    /// A parser's message is cut at 120 bytes (on a character boundary) and kept whole below.
    #[test]
    fn a_long_parser_message_is_cut_at_120_bytes_on_a_character_boundary() {
        let text = |e: CallbackError| match e {
            CallbackError::MalformedXml(why) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(text(malformed(&"short")), "short");
        assert_eq!(text(malformed(&"x".repeat(300))), "x".repeat(120));
        let wide = format!("{}{}", "x".repeat(119), "报".repeat(10));
        assert_eq!(text(malformed(&wide)), "x".repeat(119));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root's children are its direct elements, empty ones included (with empty text);
    /// an element inside a child is part of that child, not a field.
    #[test]
    fn the_fields_are_the_roots_direct_children() {
        let children = root_children("<xml><A/><B>b<C/></B><D><![CDATA[d]]></D></xml>").unwrap();
        let pairs: Vec<(&str, &str)> = children
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("A", ""), ("B", "b"), ("D", "d")]);
        assert_eq!(field(&children, "A"), Some(""));
        assert_eq!(field(&children, "C"), None);
    }

    /// Blanks between the fields are layout; any other text there is refused.
    #[test]
    fn text_outside_the_fields_is_refused_but_blanks_are_layout() {
        let laid_out = root_children("<xml>\n  <A>1</A>\n</xml>\n").unwrap();
        assert_eq!(laid_out, [("A".to_owned(), "1".to_owned())]);
        for stray in ["<xml>stray<A>1</A></xml>", "<xml><A>1</A></xml>stray"] {
            let refused = root_children(stray);
            assert!(
                matches!(&refused, Err(CallbackError::MalformedXml(why)) if why == "text outside the fields"),
                "{stray}: {refused:?}"
            );
        }
    }
}
