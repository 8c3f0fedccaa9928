//! [`IntoStatic`]: a decoded payload made to outlive the frame it was read from, every borrowed
//! string copied. [`payload!`](super::declare::payload) implements it for each payload.

use std::borrow::Cow;

/// A payload that can outlive the frame it was read from: every borrowed string copied.
pub trait IntoStatic {
    type Static;
    fn into_static(self) -> Self::Static;
}

impl IntoStatic for Cow<'_, str> {
    type Static = Cow<'static, str>;
    fn into_static(self) -> Self::Static {
        Cow::Owned(self.into_owned())
    }
}

impl<T: IntoStatic> IntoStatic for Option<T> {
    type Static = Option<T::Static>;
    fn into_static(self) -> Self::Static {
        self.map(T::into_static)
    }
}

impl<T: IntoStatic> IntoStatic for Vec<T> {
    type Static = Vec<T::Static>;
    fn into_static(self) -> Self::Static {
        self.into_iter().map(T::into_static).collect()
    }
}

/// Values that borrow nothing are moved as they are.
macro_rules! owned {
    ($($t:ty),*) => {
        $(impl IntoStatic for $t {
            type Static = $t;
            fn into_static(self) -> $t {
                self
            }
        })*
    };
}

owned!(i64, u64, bool);
