//! The substitutions a path option (`-X cds`, `-X cds_trace`) may hold, so
//! that one setting (say `PYTHONCDS=/var/cache/app.%v.img` in a service file) names
//! a different archive for each interpreter version that reads it.

/// `path` with `%v` replaced by `cache_tag` (`cpython-313`) and `%%` by `%`;
/// any other `%` is kept as written, so a path that never meant an escape
/// keeps its meaning.
pub fn expand(path: &str, cache_tag: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('v')) => {
                out.push_str(cache_tag);
                chars.next();
            }
            ('%', Some('%')) => {
                out.push('%');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expands_the_version_and_a_literal_percent() {
        assert_eq!(expand("app.%v.img", "cpython-313"), "app.cpython-313.img");
        assert_eq!(expand("100%%/%v/%v", "t"), "100%/t/t");
        assert_eq!(expand("a%b%", "t"), "a%b%");
        assert_eq!(expand("%%v", "t"), "%v");
    }
}
