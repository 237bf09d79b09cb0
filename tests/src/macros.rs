//! `e2e!`: an end-to-end test with its own world, named after the function. It skips
//! loudly when a part is missing (and fails instead under tests/run.sh). The leak scan
//! runs when the world (and every sibling) is dropped, see [`crate::world::World`].

/// An end-to-end test; the binding is the test's [`crate::world::World`]:
///
/// ```text
/// e2e! { fn name(w) { … } }                       // a computer with a Secret Service
/// e2e! { fn name(mut w) { … } }                   // the same, bound `mut`
/// e2e! { fn name(w: headless) { … } }             // no D-Bus, no Secret Service
/// e2e! { fn name(w) needs("aws", "script") { … } } // skips without these tools
/// ```
#[macro_export]
macro_rules! e2e {
    (@world $test:ident) => {
        $crate::world::World::new($test)
    };
    (@world $test:ident headless) => {
        $crate::world::World::headless($test)
    };
    (@test [$(#[$meta:meta])*] $name:ident [$($bind:tt)+] [$($kind:ident)?] [$($tool:expr),*] $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            let test = stringify!($name);
            // Tools first: a test that cannot run should not start moto.
            if !$crate::world::has_tools(test, &[$($tool),*]) {
                return;
            }
            let Some($($bind)+) = $crate::e2e!(@world test $($kind)?) else {
                return;
            };
            $body
        }
    };
    ($(#[$meta:meta])* fn $name:ident(mut $w:ident $(: $kind:ident)?) $(needs($($tool:expr),+ $(,)?))? $body:block) => {
        $crate::e2e!(@test [$(#[$meta])*] $name [mut $w] [$($kind)?] [$($($tool),+)?] $body);
    };
    ($(#[$meta:meta])* fn $name:ident($w:ident $(: $kind:ident)?) $(needs($($tool:expr),+ $(,)?))? $body:block) => {
        $crate::e2e!(@test [$(#[$meta])*] $name [$w] [$($kind)?] [$($($tool),+)?] $body);
    };
}
