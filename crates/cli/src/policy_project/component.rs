//! A core module to a policy component: the module carries the `component-type` section its
//! bindings generator wrote (wit-bindgen for Rust and C), which names the world it exports;
//! the component must import nothing, since runway gives a policy no WASI and no host calls.
//! The same steps as `runway-policy-build --module` (policies/sdk/rust/build).

use anyhow::{Context, bail};
use runway_policy_host::World;
use wit_component::{ComponentEncoder, DecodedWasm};

/// The component of `module`, and the world it exports.
pub fn componentize(module: &[u8]) -> anyhow::Result<(Vec<u8>, World)> {
    let component = ComponentEncoder::default()
        .module(module)
        .context(
            "not a policy module: it carries no runway:policy bindings (wit-bindgen's \
             component-type section)",
        )?
        .validate(true)
        .encode()
        .context(
            "cannot make a component of the module; a policy may import nothing (no WASI, no \
             libc or crate that needs a host)",
        )?;
    let world = check(&component)?;
    Ok((component, world))
}

/// The world `component` exports; an error when it imports anything or exports neither world.
pub fn check(component: &[u8]) -> anyhow::Result<World> {
    let DecodedWasm::Component(resolve, world) =
        wit_component::decode(component).context("the component does not decode")?
    else {
        bail!("expected a component, found a WIT package");
    };
    let world = &resolve.worlds[world];
    let imports: Vec<String> = world
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect();
    if !imports.is_empty() {
        bail!(
            "the component imports {}: a policy may import nothing (no WASI, no clock, no \
             host calls)",
            imports.join(", ")
        );
    }
    let exports: Vec<String> = world
        .exports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect();
    match exports.as_slice() {
        [one] if one == "runway:policy/routing@0.1.0" => Ok(World::Router),
        [one] if one == "runway:policy/throttling@0.1.0" => Ok(World::Throttle),
        [] => bail!(
            "not a policy: it exports nothing; a policy module carries the bindings of \
             wit/policy.wit (the runway SDK for Rust, wit-bindgen's for other languages)"
        ),
        _ => bail!(
            "the component exports [{}], not one of runway:policy/routing@0.1.0 and \
             runway:policy/throttling@0.1.0",
            exports.join(", ")
        ),
    }
}

/// Writes `bytes` to `path` unless it already holds them.
pub fn write_if_changed(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).is_ok_and(|existing| existing == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_policy_checks_as_its_world() {
        for (name, world) in [
            ("labels-router.wasm", World::Router),
            ("ceiling-c.wasm", World::Throttle),
        ] {
            let bytes = runway_testkit::built_policy_bytes(name).unwrap();
            assert_eq!(check(&bytes).unwrap(), world, "{name}");
        }
        // A core module without bindings is refused with a reason, not a panic.
        let error = componentize(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(format!("{error:#}").contains("not a policy"), "{error:#}");
    }
}
