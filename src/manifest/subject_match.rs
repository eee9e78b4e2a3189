//! Relations between subjects with wildcards: containment and overlap.

pub(crate) use crate::claims::is_contained_in;

/// Whether some subject matches both `a` and `b` (Go `SubjectsCollide`).
pub fn subjects_collide(a: &str, b: &str) -> bool {
    let ta: Vec<&str> = a.split('.').collect();
    let tb: Vec<&str> = b.split('.').collect();
    let mut i = 0;
    loop {
        match (ta.get(i), tb.get(i)) {
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
            (Some(x), Some(y)) => {
                if x != y && *x != "*" && *y != "*" {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_need_a_common_match() {
        assert!(subjects_collide("a.*", "a.b"));
        assert!(subjects_collide("a.>", "a.b.c"));
        assert!(subjects_collide("*.b", "a.*"));
        assert!(!subjects_collide("a.b", "a.c"));
        assert!(!subjects_collide("a.b", "a.b.c"));
        assert!(!subjects_collide("a.>", "a"));
    }

    #[test]
    fn containment_is_gos() {
        assert!(is_contained_in("a.b", "a.>"));
        assert!(!is_contained_in("a.>", "a.b"));
    }
}
