//! XML ↔ the JSON shape Eureka uses, so that one code path reads and writes
//! both formats.
//!
//! An element becomes a JSON value: a string when it has only text, otherwise
//! an object whose `@name` keys are its attributes, `$` its text and other keys
//! its child elements (repeated children become an array). Writing goes the
//! other way. This is exactly the convention of Eureka's JSON codec
//! (`"port": {"$": 8080, "@enabled": "true"}`).

use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Map, Value};

/// Most nested elements accepted in a request body.
const MAX_DEPTH: usize = 16;

/// What is wrong with an XML request body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum XmlError {
    /// The reader could not read it.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// More than [`MAX_DEPTH`] nested elements.
    #[error("XML nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    /// An entity reference that does not resolve.
    #[error("bad XML entity: {0}")]
    BadEntity(String),
    /// An attribute that does not parse.
    #[error("bad XML attribute: {0}")]
    BadAttribute(String),
    /// An end tag without its start.
    #[error("unbalanced XML")]
    Unbalanced,
    /// The document ended inside an element.
    #[error("XML document ended early")]
    EndedEarly,
}

/// Parses an XML document into `{root_name: value}`.
///
/// # Errors
/// What is wrong with the document.
pub(crate) fn parse(text: &str) -> Result<Value, XmlError> {
    // Text is trimmed once per element (in `finish`), not per event: an entity
    // reference splits text into several events, and the spaces around it count.
    let mut reader = Reader::from_str(text);
    // (element name, attributes and children so far, text)
    let mut stack: Vec<(String, Map<String, Value>, String)> = Vec::new();
    loop {
        match reader.read_event().map_err(|e| XmlError::Malformed(e.to_string()))? {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(open(&start)?);
            }
            Event::Empty(start) => {
                let (name, attributes, _) = open(&start)?;
                let value = finish(attributes, String::new());
                match stack.last_mut() {
                    Some((_, parent, _)) => add_child(parent, name, value),
                    None => return Ok(Value::Object(Map::from_iter([(name, value)]))),
                }
            }
            Event::Text(text) => {
                if let Some((_, _, own)) = stack.last_mut() {
                    // Entity references arrive as separate events, so the text is literal.
                    own.push_str(&text);
                }
            }
            Event::GeneralRef(entity) => {
                if let Some((_, _, own)) = stack.last_mut() {
                    let reference = format!("&{};", &*entity);
                    let resolved =
                        quick_xml::escape::unescape(&reference).map_err(|e| XmlError::BadEntity(e.to_string()))?;
                    own.push_str(&resolved);
                }
            }
            Event::CData(data) => {
                if let Some((_, _, own)) = stack.last_mut() {
                    own.push_str(&data);
                }
            }
            Event::End(_) => {
                let Some((name, attributes, text)) = stack.pop() else { return Err(XmlError::Unbalanced) };
                let value = finish(attributes, text);
                match stack.last_mut() {
                    Some((_, parent, _)) => add_child(parent, name, value),
                    None => return Ok(Value::Object(Map::from_iter([(name, value)]))),
                }
            }
            Event::Eof => return Err(XmlError::EndedEarly),
            _ => {}
        }
    }
}

fn open(start: &BytesStart<'_>) -> Result<(String, Map<String, Value>, String), XmlError> {
    let name = start.local_name().as_ref().to_owned();
    let mut attributes = Map::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError::BadAttribute(e.to_string()))?;
        let key = attribute.key.local_name().as_ref().to_owned();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| XmlError::BadAttribute(e.to_string()))?
            .into_owned();
        attributes.insert(format!("@{key}"), Value::String(value));
    }
    Ok((name, attributes, String::new()))
}

fn finish(mut object: Map<String, Value>, text: String) -> Value {
    let text = text.trim();
    if object.is_empty() {
        return Value::String(text.to_owned());
    }
    if !text.is_empty() {
        object.insert("$".to_owned(), Value::String(text.to_owned()));
    }
    Value::Object(object)
}

fn add_child(parent: &mut Map<String, Value>, name: String, value: Value) {
    match parent.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            parent.insert(name, value);
        }
    }
}

/// Writes `value` as the element `name` (with an XML declaration).
pub(crate) fn render(name: &str, value: &Value) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), Some("yes"))));
    write_element(&mut writer, name, value);
    writer.into_inner()
}

fn write_element(writer: &mut Writer<Vec<u8>>, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                write_element(writer, name, item);
            }
        }
        Value::Object(object) => {
            let mut start = BytesStart::new(name);
            for (key, attribute) in object.iter().filter(|(k, _)| k.starts_with('@')) {
                start.push_attribute((&key[1..], scalar(attribute).as_str()));
            }
            let children: Vec<_> = object.iter().filter(|(k, _)| !k.starts_with('@')).collect();
            if children.is_empty() {
                let _ = writer.write_event(Event::Empty(start));
                return;
            }
            let _ = writer.write_event(Event::Start(start));
            for (key, child) in children {
                if key == "$" {
                    let _ = writer.write_event(Event::Text(BytesText::new(&scalar(child))));
                } else {
                    write_element(writer, key, child);
                }
            }
            let _ = writer.write_event(Event::End(BytesEnd::new(name)));
        }
        Value::Null => {
            let _ = writer.write_event(Event::Empty(BytesStart::new(name)));
        }
        other => {
            let _ = writer.write_event(Event::Start(BytesStart::new(name)));
            let _ = writer.write_event(Event::Text(BytesText::new(&scalar(other))));
            let _ = writer.write_event(Event::End(BytesEnd::new(name)));
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trips_eureka_shapes() {
        let value = json!({"instanceId": "a", "port": {"$": 8080, "@enabled": "true"}, "metadata": {"k": "v & w"},
                           "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"}});
        let xml = String::from_utf8(render("instance", &value)).unwrap();
        assert!(xml.contains(r#"<port enabled="true">8080</port>"#), "{xml}");
        assert!(xml.contains("v &amp; w"), "{xml}");
        let back = parse(&xml).unwrap();
        assert_eq!(back["instance"]["port"], json!({"$": "8080", "@enabled": "true"}));
        assert_eq!(back["instance"]["metadata"]["k"], "v & w");
        assert_eq!(back["instance"]["dataCenterInfo"]["name"], "MyOwn");
    }

    #[test]
    fn repeated_children_become_arrays_and_bad_xml_is_refused() {
        let back =
            parse("<apps><application><name>A</name></application><application><name>B</name></application></apps>")
                .unwrap();
        assert_eq!(back["apps"]["application"][1]["name"], "B");
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse(&"<a>".repeat(40)).is_err());
    }
}
