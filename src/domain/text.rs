//! Text rules shared by every resource with names: trimming, length limits, katakana
//! readings (フリガナ), and the search key that makes `q` match the same way on both backends.

use crate::error::FieldError;

/// Trims `value` and checks it is non-empty and at most `max` characters.
pub fn required_text(field: &str, value: Option<String>, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        None => {
            errors.push(FieldError::new(field, "required", "is required"));
            None
        }
        Some(v) => checked_text(field, v, max, errors),
    }
}

/// Trims an optional value; an empty string counts as absent.
pub fn optional_text(field: &str, value: Option<String>, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value?;
    if v.trim().is_empty() {
        return None;
    }
    checked_text(field, v, max, errors)
}

fn checked_text(field: &str, value: String, max: usize, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        errors.push(FieldError::new(field, "required", "must not be blank"));
        return None;
    }
    if v.chars().count() > max {
        errors.push(FieldError::new(field, "too_long", format!("must be at most {max} characters")));
        return None;
    }
    if v.chars().any(|c| c.is_control()) {
        errors.push(FieldError::new(field, "invalid_format", "must not contain control characters"));
        return None;
    }
    Some(v.to_owned())
}

/// A name's reading: full-width katakana (ヤマダ タロウ), with the long-vowel mark, middle dot and
/// spaces. Hiragana is accepted and stored as katakana so that one spelling is kept.
pub fn kana(field: &str, value: String, errors: &mut Vec<FieldError>) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    for c in value.trim().chars() {
        match c {
            '\u{3041}'..='\u{3096}' => out.push(char::from_u32(c as u32 + 0x60).unwrap_or(c)),
            '\u{30A1}'..='\u{30FA}' | 'ー' | '・' | 'ヽ' | 'ヾ' => out.push(c),
            ' ' | '\u{3000}' => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            _ => {
                errors.push(FieldError::new(field, "invalid_format", "must be written in katakana"));
                return None;
            }
        }
    }
    if out.is_empty() {
        errors.push(FieldError::new(field, "required", "must not be blank"));
        return None;
    }
    if out.chars().count() > 200 {
        errors.push(FieldError::new(field, "too_long", "must be at most 200 characters"));
        return None;
    }
    Some(out)
}

/// A telephone number as written in Japan: digits with optional hyphens, or `+` and digits.
pub fn phone(field: &str, value: String, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.trim();
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let shape_ok = v.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || c == '-' || (c == '+' && i == 0));
    if !shape_ok || !(10..=15).contains(&digits) {
        errors.push(FieldError::new(field, "invalid_format", "must be a telephone number such as 03-1234-5678"));
        return None;
    }
    Some(v.to_owned())
}

/// 郵便番号: `123-4567` or `1234567`, stored as `123-4567`.
pub fn postal_code(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.trim();
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    let shape_ok = v.len() == 7 || (v.len() == 8 && v.as_bytes()[3] == b'-');
    if digits.len() != 7 || !shape_ok {
        errors.push(FieldError::new(field, "invalid_format", "must be a postal code such as 100-0001"));
        return None;
    }
    Some(format!("{}-{}", &digits[..3], &digits[3..]))
}

/// Normalises text for substring search, identically for stored values and queries:
/// full-width ASCII to half-width, katakana to hiragana, lower case, no white space.
/// Search then is a plain `LIKE '%key%'` that behaves the same on SQLite and PostgreSQL.
pub fn search_key(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{30A1}'..='\u{30F6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            _ => c,
        };
        if c.is_whitespace() || c.is_control() || c == '・' {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The stored search text of a record: its name and reading, kept apart by a line break so a
/// query never matches across the two (queries cannot contain one).
pub fn search_text(name: &str, kana: Option<&str>) -> String {
    match kana {
        Some(k) => format!("{}\n{}", search_key(name), search_key(k)),
        None => search_key(name),
    }
}

/// The distinct pairs of neighbouring characters of a search text or key: the entries of the
/// patient search index. A record contains a key only if it has every pair of the key.
pub fn bigrams(text: &str) -> std::collections::BTreeSet<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(2).map(|w| w.iter().collect()).collect()
}

/// A `LIKE` pattern for `key`, with `\` as the escape character.
pub fn like_pattern(key: &str) -> String {
    let mut p = String::with_capacity(key.len() + 2);
    p.push('%');
    for c in key.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_key_folds_width_kana_case_and_spaces() {
        assert_eq!(search_key("ヤマダ　タロウ"), "やまだたろう");
        assert_eq!(search_key("ＡＢＣ Clinic"), "abcclinic");
        assert_eq!(search_key("山田・クリニック"), "山田くりにっく");
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn kana_accepts_katakana_and_converts_hiragana() {
        let mut errors = Vec::new();
        assert_eq!(kana("kana", "やまだ たろう".into(), &mut errors).as_deref(), Some("ヤマダ タロウ"));
        assert_eq!(kana("kana", "サトウ　ハナコ".into(), &mut errors).as_deref(), Some("サトウ ハナコ"));
        assert!(errors.is_empty());
        assert_eq!(kana("kana", "Yamada".into(), &mut errors), None);
        assert_eq!(errors[0].code, "invalid_format");
    }

    #[test]
    fn phone_requires_ten_to_fifteen_digits() {
        let mut errors = Vec::new();
        assert!(phone("phone", "03-1234-5678".into(), &mut errors).is_some());
        assert!(phone("phone", "+81312345678".into(), &mut errors).is_some());
        assert!(phone("phone", "1234".into(), &mut errors).is_none());
        assert!(phone("phone", "03-12a4-5678".into(), &mut errors).is_none());
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn required_text_reports_blank_and_too_long() {
        let mut errors = Vec::new();
        assert_eq!(required_text("name", Some("  x ".into()), 5, &mut errors).as_deref(), Some("x"));
        assert!(required_text("name", None, 5, &mut errors).is_none());
        assert!(required_text("name", Some("   ".into()), 5, &mut errors).is_none());
        assert!(required_text("name", Some("abcdef".into()), 5, &mut errors).is_none());
        let codes: Vec<_> = errors.iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes, ["required", "required", "too_long"]);
    }

    #[test]
    fn bigrams_are_the_distinct_neighbour_pairs() {
        let all: Vec<String> = super::bigrams("さとうさと").into_iter().collect();
        assert_eq!(all, ["うさ", "さと", "とう"]);
        assert!(super::bigrams("さ").is_empty());
    }
}
