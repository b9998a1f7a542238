//! Unit tests of the class-file reader/writer and the wrapper.

use super::classfile::{ClassError, ClassFile};
use super::wrap::{native_methods, Wrap};

#[test]
fn native_methods_follow_the_descriptor() {
    let w = Wrap {
        method: "write",
        desc: "([BII)V",
    };
    assert_eq!(
        native_methods(&w),
        [
            (
                "tapline$write$pre".to_string(),
                "(Ljava/lang/Object;[BII)J".to_string()
            ),
            (
                "tapline$write$post".to_string(),
                "(JLjava/lang/Object;[BII)V".to_string()
            ),
        ]
    );
    let w = Wrap {
        method: "read",
        desc: "([BII)I",
    };
    assert_eq!(native_methods(&w)[1].1, "(JLjava/lang/Object;[BIII)V");
}

#[test]
fn garbage_is_an_error() {
    assert_eq!(ClassFile::parse(b""), Err(ClassError::Truncated));
    assert_eq!(
        ClassFile::parse(b"\xca\xfe\xba\xbf\0\0\0\x34"),
        Err(ClassError::BadMagic)
    );
}
