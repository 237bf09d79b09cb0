//! `e2e!`: an end-to-end test with its own world. It skips loudly when a part is
//! missing (and fails instead under tests/run.sh). The leak scan runs when the world
//! (and every sibling) is dropped, see [`crate::world::World`].

/// `e2e!(fn name(w) { … })` — `w` is the test's [`crate::world::World`].
#[macro_export]
macro_rules! e2e {
    ($(#[$meta:meta])* fn $name:ident($w:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            let Some($w) = $crate::world::World::new(stringify!($name)) else {
                return;
            };
            $body
        }
    };
}
