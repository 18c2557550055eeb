//! Where a key is in the configuration text, so that a value refused after parsing (the parser
//! only knows lines for syntax and type errors) is reported with its line too.

use toml_edit::{ImDocument, Item, TableLike};

/// The 1-based line of `key` (`node[1].dip_pct`, `site.generator.connection_kva`, `routes.repair`)
/// in `text`: the line of the deepest part of the key that is written in the file (a missing
/// `dip_pct` points at its `[[node]]`), or `None` if not even the first part is.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let doc = ImDocument::parse(text).ok()?;
    let mut table: &dyn TableLike = doc.as_table();
    let mut span = None;
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((k, item)) = table.get_key_value(name) else {
            break;
        };
        span = k.span().or(span);
        let next: Option<&dyn TableLike> = match (item, index) {
            (Item::ArrayOfTables(a), Some(i)) => match a.get(i) {
                Some(t) => {
                    span = t.span().or(span);
                    Some(t)
                }
                None => None,
            },
            (Item::Value(v), Some(i)) => {
                if let Some(v) = v.as_array().and_then(|a| a.get(i)) {
                    span = v.span().or(span);
                }
                None
            }
            (item, None) => item.as_table_like(),
            _ => None,
        };
        match next {
            Some(t) => table = t,
            None => break,
        }
    }
    span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const TEXT: &str = "listen = \"127.0.0.1:8080\"\n\n[[node]]\nname = \"a\"\nudin = 230\n\n[[node]]\nname = \"b\"\ndip_pct = 5\n\n[site.generator]\neligible = true\n\n[routes]\nrepair = [\"desk\", \"sms\"]\n";

    #[test]
    fn a_refused_value_is_found_on_its_line() {
        assert_eq!(line_of(TEXT, "listen"), Some(1));
        assert_eq!(line_of(TEXT, "node[1].dip_pct"), Some(9));
        assert_eq!(line_of(TEXT, "site.generator.eligible"), Some(12));
        assert_eq!(line_of(TEXT, "routes.repair"), Some(15));
    }

    #[test]
    fn a_missing_key_points_at_the_section_it_belongs_to() {
        assert_eq!(line_of(TEXT, "node[0].silence_s"), Some(3));
        assert_eq!(line_of(TEXT, "site.generator.connection_kva"), Some(11));
        assert_eq!(line_of(TEXT, "store.path"), None);
    }
}
